// Package composecheck checks docker-compose.yml with the Compose
// specification's own loader. It is a module of its own so that the
// loader's dependencies stay out of Lookout's; `make test` runs it.
package composecheck

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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
