package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeFileHasEveryComponent checks that each component lookout
// knows has a service of its own in docker-compose.yml. How each service
// runs is checked by the Compose specification's loader in
// deploy/composecheck, a module of its own so that its dependencies stay
// out of this one.
func TestComposeFileHasEveryComponent(t *testing.T) {
	for _, path := range []string{"../../docker-compose.yml", "../../deploy/cluster/docker-compose.yml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Services map[string]yaml.Node `yaml:"services"`
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, name := range componentNames() {
			if _, ok := file.Services[name]; !ok {
				t.Errorf("component %q has no service in %s", name, path)
			}
		}
	}
}

// TestClusterDeploymentConfigs checks deploy/cluster: each node's
// configuration is valid for the nats-server of go.mod (its own -t check)
// and routes to all three nodes, and Lookout's configuration loads with
// three replicas.
func TestClusterDeploymentConfigs(t *testing.T) {
	bin := natsServerBinary(t)
	// As compose mounts them: the node's file with the roles and the
	// (example) passwords beside it.
	dir := t.TempDir()
	for src, dst := range map[string]string{"../../deploy/nats/auth.conf": "auth.conf", "../../deploy/nats/passwords.example.conf": "passwords.conf"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		path := fmt.Sprintf("../../deploy/cluster/nats-%d.conf", i)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mounted := filepath.Join(dir, fmt.Sprintf("nats-%d.conf", i))
		if err := os.WriteFile(mounted, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "-c", mounted).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", path, err, out)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for j := 1; j <= 3; j++ {
			if route := fmt.Sprintf("nats-route://nats-%d:6222", j); !strings.Contains(string(data), route) {
				t.Errorf("%s lacks route %s", path, route)
			}
		}
	}
	cfg, err := loadConfig("../../deploy/cluster/lookout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.Replicas != 3 {
		t.Errorf("deploy/cluster/lookout.yaml: nats.replicas %d, want 3", cfg.NATS.Replicas)
	}
}
