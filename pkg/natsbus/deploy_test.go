package natsbus_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// TestDeployConfigHasTheRoles: deploy/nats/nats-server.conf, with its
// auth.conf and the example passwords, gives each user exactly the permissions the embedded
// server gives its role, and Lookout's own user every permission; so an
// external server is locked as `lookout run` is.
func TestDeployConfigHasTheRoles(t *testing.T) {
	dir := t.TempDir()
	for src, dst := range map[string]string{"nats-server.conf": "nats-server.conf", "auth.conf": "auth.conf", "passwords.example.conf": "passwords.conf"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := natsbus.NewSubjects("")
	want := map[string]*server.Permissions{
		"lookout": nil,
		"app":     s.Permissions(natsbus.RolePublisher),
		"grafana": s.Permissions(natsbus.RoleReader),
		"ops":     s.Permissions(natsbus.RoleAdmin),
	}
	if len(opts.Users) != len(want) {
		t.Fatalf("%d users, want %d", len(opts.Users), len(want))
	}
	for _, u := range opts.Users {
		w, ok := want[u.Username]
		if !ok {
			t.Errorf("unexpected user %s", u.Username)
			continue
		}
		if !samePermissions(u.Permissions, w) {
			t.Errorf("user %s: permissions %+v, want %+v", u.Username, describe(u.Permissions), describe(w))
		}
	}
	opts.StoreDir = filepath.Join(dir, "js")
	opts.Port, opts.HTTPPort = -1, 0
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("the config does not start a server: %v", err)
	}
	ns.Shutdown()
}

func samePermissions(a, b *server.Permissions) bool {
	return reflect.DeepEqual(describe(a), describe(b))
}

// describe flattens permissions for comparison: nil and empty lists are
// the same.
func describe(p *server.Permissions) [4][]string {
	var out [4][]string
	if p == nil {
		return out
	}
	if p.Publish != nil {
		out[0], out[1] = p.Publish.Allow, p.Publish.Deny
	}
	if p.Subscribe != nil {
		out[2], out[3] = p.Subscribe.Allow, p.Subscribe.Deny
	}
	for i := range out {
		if len(out[i]) == 0 {
			out[i] = nil
		}
	}
	return out
}
