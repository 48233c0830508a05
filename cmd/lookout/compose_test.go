package main

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeFileHasEveryComponent checks that each component lookout
// knows has a service of its own in docker-compose.yml. How each service
// runs is checked by the Compose specification's loader in
// deploy/composecheck, a module of its own so that its dependencies stay
// out of this one.
func TestComposeFileHasEveryComponent(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]yaml.Node `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range componentNames() {
		if _, ok := file.Services[name]; !ok {
			t.Errorf("component %q has no service in docker-compose.yml", name)
		}
	}
}
