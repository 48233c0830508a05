package main

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/versions"
)

// wandbPayload is the body Lookout expects from a W&B Registry automation
// ("An artifact alias is added"). W&B sends whatever the automation's
// payload template says, so the README gives the exact template:
//
//	{"event_type": "${event_type}",
//	 "artifact_version_string": "${artifact_version_string}",
//	 "artifact_collection_name": "${artifact_collection_name}",
//	 "alias": "production", "model": "churn"}
//
// artifact_version_string is "entity/project/name:vN"; the version is what
// follows the colon (vN), unless "version" is given; the run is
// wandb://<artifact_version_string> (the artifact version, which W&B links
// to the run that logged it), unless "run" is given; the model is "model",
// else the collection name.
type wandbPayload struct {
	EventType              string `json:"event_type"`
	ArtifactVersionString  string `json:"artifact_version_string"`
	ArtifactCollectionName string `json:"artifact_collection_name"`
	Alias                  string `json:"alias"`
	Model                  string `json:"model"`
	Version                string `json:"version"`
	Run                    string `json:"run"`
}

// wandbHook serves POST /v1/hooks/wandb. W&B sends the webhook's access
// token as `Authorization: Bearer <token>`; it must equal wandb.secret.
type wandbHook struct {
	secret  string
	aliases []string
	js      jetstream.JetStream
	cfg     Config
	log     *zap.Logger
}

func newWandbHook(cfg Config, js jetstream.JetStream, log *zap.Logger) (*wandbHook, error) {
	secret := cfg.Wandb.Secret
	if cfg.Wandb.SecretFile != "" {
		b, err := os.ReadFile(cfg.Wandb.SecretFile)
		if err != nil {
			return nil, err
		}
		secret = strings.TrimSpace(string(b))
	}
	aliases := cfg.Wandb.Aliases
	if len(aliases) == 0 {
		aliases = []string{"production"}
	}
	return &wandbHook{secret: secret, aliases: aliases, js: js, cfg: cfg, log: log}, nil
}

func (h *wandbHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.secret == "" {
		http.Error(w, "wandb hook: no wandb.secret configured", http.StatusServiceUnavailable)
		return
	}
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(got), []byte(h.secret)) != 1 {
		http.Error(w, "wandb hook: bad or missing bearer token", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "wandb hook: "+err.Error(), http.StatusBadRequest)
		return
	}
	var p wandbPayload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "wandb hook: body is not the JSON of Lookout's payload template: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p.EventType != "" && !strings.Contains(strings.ToUpper(p.EventType), "ALIAS") {
		writeJSON(w, http.StatusAccepted, map[string]any{"registered": false, "why": "event " + p.EventType + " is not an alias added"})
		return
	}
	if !slices.Contains(h.aliases, p.Alias) {
		writeJSON(w, http.StatusAccepted, map[string]any{"registered": false, "why": "alias " + p.Alias + " is not one of wandb.aliases"})
		return
	}
	model, version, run := p.Model, p.Version, p.Run
	name, v, _ := strings.Cut(p.ArtifactVersionString, ":")
	if model == "" {
		model = p.ArtifactCollectionName
		if model == "" {
			model = name[strings.LastIndex(name, "/")+1:]
		}
	}
	if version == "" {
		version = v
	}
	if run == "" && p.ArtifactVersionString != "" {
		run = "wandb://" + p.ArtifactVersionString
	}
	if !event.IsValidModel(model) || version == "" || run == "" {
		http.Error(w, "wandb hook: need a model (model or artifact_collection_name), a version and a run (artifact_version_string \"entity/project/name:vN\")", http.StatusBadRequest)
		return
	}
	kv, err := versions.Bind(r.Context(), h.js, subjectsFor(h.cfg))
	if err == nil {
		var rec versions.Record
		rec, err = versions.Put(r.Context(), kv, versions.Record{Model: model, Version: version, Run: run, Source: "wandb"})
		if err == nil {
			h.log.Info("wandb hook: version registered", zap.String("model", model), zap.String("version", version), zap.String("run", run))
			writeJSON(w, http.StatusOK, map[string]any{"registered": true, "record": rec})
			return
		}
	}
	h.log.Warn("wandb hook: not stored", zap.Error(err))
	http.Error(w, "wandb hook: "+err.Error(), http.StatusServiceUnavailable)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
