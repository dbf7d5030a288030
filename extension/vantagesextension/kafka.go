package vantagesextension // import "github.com/certpulse/certpulse/extension/vantagesextension"

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/config/configtls"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/vantage"
)

// KafkaConfig reads the members of a Kafka consumer group: the gateway
// tier's collectors, which consume the agents' topic in one group (the
// kafkareceiver's group_id). A member is named by its group.instance.id
// (static membership) or else its client_id: give every gateway its own
// (`client_id: ${env:POD_NAME}`), and the same name as its `self`.
type KafkaConfig struct {
	Brokers []string `mapstructure:"brokers"`
	// GroupID: the consumer group whose members share the targets.
	GroupID string `mapstructure:"group_id"`
	// ClientID of this extension's own admin client (it joins no group).
	// Default certpulse-vantages.
	ClientID string `mapstructure:"client_id"`
	// RefreshInterval: how often the group is described. Default 10s. A
	// member that dies leaves the group after the consumers' session
	// timeout (kafkareceiver: 10s by default).
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	// TLS to the brokers; none when absent.
	TLS *configtls.ClientConfig `mapstructure:"tls"`
}

// groupSource describes the consumer group.
type groupSource struct {
	cfg    *KafkaConfig
	admin  *kadm.Client
	close  func()
	logger *zap.Logger
	shared int // members whose name another had, at the last list (logged on change)
}

func newGroupSource(ctx context.Context, cfg *KafkaConfig, logger *zap.Logger) (*groupSource, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID), kgo.RequestTimeoutOverhead(5 * time.Second)}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.LoadTLSConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("certpulse_vantages: kafka::tls: %w", err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("certpulse_vantages: kafka client: %w", err)
	}
	return &groupSource{cfg: cfg, admin: kadm.NewClient(cl), close: cl.Close, logger: logger}, nil
}

func (s *groupSource) list(ctx context.Context) ([]vantage.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	groups, err := s.admin.DescribeGroups(ctx, s.cfg.GroupID)
	if err != nil {
		return nil, err
	}
	g, ok := groups[s.cfg.GroupID]
	if !ok {
		return nil, fmt.Errorf("group %s not described", s.cfg.GroupID)
	}
	if g.Err != nil {
		return nil, fmt.Errorf("group %s: %w", s.cfg.GroupID, g.Err)
	}
	if n := sharedNames(g); n != s.shared {
		s.shared = n
		if n > 0 {
			s.logger.Warn("certpulse_vantages: members of the consumer group share a name and count as one; give each its own client_id or group_instance_id",
				zap.String("group", s.cfg.GroupID), zap.Int("members", len(g.Members)), zap.Int("sharing", n))
		}
	}
	return groupMembers(g), nil
}

func (s *groupSource) what() string         { return "the consumer group " + s.cfg.GroupID }
func (s *groupSource) shutdown()            { s.close() }
func (s *groupSource) every() time.Duration { return s.cfg.RefreshInterval }

// groupMembers: the group's members by instance id, else client id,
// each name once (pure). A group that is Empty or Dead has none.
func groupMembers(g kadm.DescribedGroup) []vantage.Member {
	seen := map[string]bool{}
	var out []vantage.Member
	for _, m := range g.Members {
		name := m.ClientID
		if m.InstanceID != nil && *m.InstanceID != "" {
			name = *m.InstanceID
		}
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, vantage.Member{Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// sharedNames: how many members shared a name with another (they count
// as one: a fleet whose gateways all keep the default client_id has one
// member).
func sharedNames(g kadm.DescribedGroup) int {
	return len(g.Members) - len(groupMembers(g))
}
