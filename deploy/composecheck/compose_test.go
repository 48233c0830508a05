// Package composecheck checks docker-compose.yml with the Compose
// specification's own loader. It is a module of its own so that the
// loader's dependencies stay out of Lookout's; `make test` runs it.
package composecheck

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFileRunsEachComponentAlone parses docker-compose.yml with the
// Compose specification's own loader (no Docker engine runs here) and
// checks that every service but nats runs `lookout run --only <its name>`
// against the nats service, built from deploy/Dockerfile. That each
// component lookout knows has a service is checked in cmd/lookout
// (TestComposeFileHasEveryComponent), which knows the components.
func TestComposeFileRunsEachComponentAlone(t *testing.T) {
	root, _ := filepath.Abs("../..")
	content, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml", Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("lookout", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	nats, ok := project.Services["nats"]
	if !ok {
		t.Fatal("no nats service")
	}
	if !slices.Contains([]string(nats.Command), "/etc/nats/nats-server.conf") ||
		!slices.ContainsFunc(nats.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/etc/nats/nats-server.conf" }) {
		t.Errorf("the nats service does not run deploy/nats/nats-server.conf: %v", nats.Command)
	}
	if len(project.Services) < 2 {
		t.Fatal("no lookout service")
	}
	for name, svc := range project.Services {
		if name == "nats" {
			continue
		}
		cmd := []string(svc.Command)
		i := slices.Index(cmd, "--only")
		if len(cmd) == 0 || cmd[0] != "run" || i < 0 || i+1 >= len(cmd) || cmd[i+1] != name || !slices.Contains(cmd, "nats://nats:4222") {
			t.Errorf("service %q runs %v, want lookout run --nats nats://nats:4222 --only %s", name, cmd, name)
		}
		// Locked: every component connects as Lookout's internal user with
		// its password from a secret file, never from the command line.
		if !slices.ContainsFunc(svc.Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == "lookout_nats_password" }) ||
			svc.Environment["LOOKOUT_NATS_PASSWORD_FILE"] == nil || *svc.Environment["LOOKOUT_NATS_PASSWORD_FILE"] != "/run/secrets/lookout_nats_password" {
			t.Errorf("service %q does not take the internal user's password from its secret", name)
		}
		if svc.Build == nil || svc.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("service %q is not built from deploy/Dockerfile", name)
		}
	}
}

// TestMonitoringProfileMountsExist loads the file with the monitoring
// profile (Prometheus and Grafana) and checks that every file they mount
// is in the repository: a renamed dashboard would otherwise only show as
// an empty Grafana.
func TestMonitoringProfileMountsExist(t *testing.T) {
	root, _ := filepath.Abs("../..")
	content, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml", Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("lookout", true); o.Profiles = []string{"monitoring"} })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with the monitoring profile: %v", err)
	}
	for _, name := range []string{"prometheus", "grafana"} {
		svc, ok := project.Services[name]
		if !ok {
			t.Fatalf("no %s service in the monitoring profile", name)
		}
		if len(svc.Volumes) == 0 {
			t.Errorf("%s mounts nothing", name)
		}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// TestClusterComposeFile loads deploy/cluster/docker-compose.yml with the
// Compose loader: three NATS nodes, each with its own configuration and
// data volume, and every Lookout service runs `lookout run --only <its
// name>` against all three nodes with the cluster's lookout.yaml, built
// from deploy/Dockerfile.
func TestClusterComposeFile(t *testing.T) {
	root, _ := filepath.Abs("../..")
	dir := filepath.Join(root, "deploy", "cluster")
	content, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml", Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("lookout-cluster", true) })
	if err != nil {
		t.Fatalf("deploy/cluster/docker-compose.yml does not load: %v", err)
	}
	const urls = "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
	nodes := 0
	for name, svc := range project.Services {
		if strings.HasPrefix(name, "nats-") {
			nodes++
			conf := false
			for _, v := range svc.Volumes {
				if v.Target == "/etc/nats/nats.conf" && filepath.Base(v.Source) == name+".conf" {
					conf = true
				}
			}
			if !conf {
				t.Errorf("node %q does not mount %s.conf", name, name)
			}
			continue
		}
		cmd := []string(svc.Command)
		i := slices.Index(cmd, "--only")
		if len(cmd) == 0 || cmd[0] != "run" || i < 0 || i+1 >= len(cmd) || cmd[i+1] != name || !slices.Contains(cmd, urls) {
			t.Errorf("service %q runs %v, want lookout run --nats %s --only %s", name, cmd, urls, name)
		}
		if !slices.Contains(cmd, "/etc/lookout/lookout.yaml") {
			t.Errorf("service %q does not read the cluster's lookout.yaml", name)
		}
		if svc.Build == nil || svc.Build.Dockerfile != "deploy/Dockerfile" || svc.Build.Context != root {
			t.Errorf("service %q is not built from deploy/Dockerfile at the repository root: %+v", name, svc.Build)
		}
		if len(svc.DependsOn) != 3 {
			t.Errorf("service %q waits for %d nodes, want 3", name, len(svc.DependsOn))
		}
	}
	if nodes != 3 {
		t.Errorf("%d NATS nodes, want 3", nodes)
	}
}
