package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPublishCSVEmptyTagIsNoTag: an empty tag.<name> cell is no tag, as
// the drift CSV reader reads it, not the tag value "".
func TestPublishCSVEmptyTagIsNoTag(t *testing.T) {
	r, err := newCSVReader(strings.NewReader("id,prediction,age,tag.region,tag.tier\n1,0.5,40,eu,\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	line, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Tags map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Tags) != 1 || e.Tags["region"] != "eu" {
		t.Errorf("tags %v, want only region=eu", e.Tags)
	}
}
