package vantagesextension // import "github.com/certpulse/certpulse/extension/vantagesextension"

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certpulse/certpulse/internal/vantage"
)

// podSource lists the agent pods.
type podSource struct {
	cfg    *KubernetesConfig
	client kubernetes.Interface
}

func newPodSource(cfg *KubernetesConfig) (*podSource, error) {
	var rc *rest.Config
	var err error
	switch cfg.AuthType {
	case "serviceAccount":
		rc, err = rest.InClusterConfig()
	default:
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("certpulse_vantages: kubernetes client (%s): %w", cfg.AuthType, err)
	}
	rc.Timeout = 10 * time.Second
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("certpulse_vantages: kubernetes client: %w", err)
	}
	return &podSource{cfg: cfg, client: c}, nil
}

// maxPods bounds the pods read per list.
const maxPods = 5000

func (s *podSource) list(ctx context.Context) ([]vantage.Member, error) {
	pods, err := s.client.CoreV1().Pods(s.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: s.cfg.LabelSelector, Limit: maxPods})
	if err != nil {
		return nil, err
	}
	return membersOf(pods.Items, s.cfg.ZoneLabel), nil
}

// membersOf: the ready pods that are not being deleted, by node (pure).
func membersOf(pods []corev1.Pod, zoneLabel string) []vantage.Member {
	var out []vantage.Member
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || !ready(p) {
			continue
		}
		out = append(out, vantage.Member{Name: p.Spec.NodeName, Zone: p.Labels[zoneLabel]})
	}
	return out
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (s *podSource) what() string         { return "the agent pods" }
func (s *podSource) shutdown()            {}
func (s *podSource) every() time.Duration { return s.cfg.RefreshInterval }

// source is where the membership comes from: the agent pods, a consumer
// group.
type source interface {
	list(ctx context.Context) ([]vantage.Member, error)
	what() string
	every() time.Duration
	shutdown()
}

// watch lists the members every refresh interval until ctx ends; a failed
// list keeps the last membership (logged), so an outage of the API server
// or the brokers moves no targets.
func (e *vantagesExtension) watch(ctx context.Context, src source) {
	defer src.shutdown()
	t := time.NewTicker(src.every())
	defer t.Stop()
	failing := false
	for {
		ms, err := src.list(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				e.logger.Warn("certpulse_vantages: listing "+src.what()+" failed; keeping the last membership", zap.Error(err))
			}
			failing = true
		case err == nil:
			if failing {
				e.logger.Info("certpulse_vantages: listing " + src.what() + " works again")
			}
			failing = false
			if e.set.Update(ms) {
				e.logger.Info("certpulse_vantages: membership changed", zap.Int("members", len(ms)), zap.String("self", e.set.Self()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
