package faultlab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Process is a fault lab running as a separate process (bin/certpulse-lab),
// so that benchmarks measure the prober's CPU without the servers'.
type Process struct {
	Files     Files
	Endpoints []Endpoint
	// NodeGroups are the lab's node groups (from nodes.json).
	NodeGroups []NodeGroup
	cmd        *exec.Cmd
	done       chan error
}

// StartProcess runs the certpulse-lab binary at bin with its files in dir.
func StartProcess(bin, dir string) (*Process, error) {
	cmd := exec.Command(bin, "-dir", dir, "-quiet")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	targets := filepath.Join(dir, "targets.yaml")
	for {
		if _, err := os.Stat(targets); err == nil {
			break
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("certpulse-lab exited: %v", err)
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("certpulse-lab did not write %s within 30s", targets)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.Files = Files{
		Dir: dir, Roots: filepath.Join(dir, "roots.pem"), ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey: filepath.Join(dir, "client-key.pem"), TargetsFile: targets, Endpoints: filepath.Join(dir, "endpoints.json"),
		NodeGroups: filepath.Join(dir, "nodes.json"),
	}
	eps, err := ReadEndpoints(p.Files.Endpoints)
	if err != nil {
		p.Stop()
		return nil, err
	}
	p.Endpoints = eps
	data, err := os.ReadFile(p.Files.NodeGroups)
	if err == nil {
		err = json.Unmarshal(data, &p.NodeGroups)
	}
	if err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Endpoint returns the endpoint named name.
func (p *Process) Endpoint(name string) (Endpoint, bool) {
	for _, e := range p.Endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Stop ends the lab process and waits for it.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
