package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lookout-ml/lookout/pkg/alerting"
	"github.com/lookout-ml/lookout/pkg/dashboard"
	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/httpingest"
	"github.com/lookout-ml/lookout/pkg/natsbus"
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/pkg/versions"
	"github.com/lookout-ml/lookout/pkg/webauth"
	"github.com/lookout-ml/lookout/services/alert"
)

func init() {
	register(command{
		name:  "run",
		usage: "[--only ingest,archive,...] [--nats URL] run Lookout (embedded NATS unless --nats is given)",
		run:   runCommand,
	})
}

// runOptions are the flags of `lookout run`.
type runOptions struct {
	natsURL    string // empty: start the embedded server
	listen     string
	httpAddr   string
	dataDir    string
	configPath string
	only       []string
	demo       bool
	logLevel   zapcore.Level
	// auth is how to authenticate to the server given with --nats.
	auth natsAuthFlags
}

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts runOptions
		only string
	)
	fs.StringVar(&opts.natsURL, "nats", "", "use the NATS server at `URL` instead of starting an embedded one")
	fs.StringVar(&opts.listen, "listen", "127.0.0.1:4222", "client address of the embedded NATS server, `host:port`")
	fs.StringVar(&opts.httpAddr, "http", "127.0.0.1:8080", "address of /metrics, /healthz, the dashboard, its API and HTTP ingest, `host:port`")
	fs.StringVar(&opts.dataDir, "data", "./lookout-data", "data `folder`: JetStream files and the archive")
	fs.StringVar(&opts.configPath, "config", "", "YAML configuration `file`")
	fs.StringVar(&only, "only", "", "run only these services, comma-separated: "+strings.Join(componentNames(), ","))
	fs.BoolVar(&opts.demo, "demo", false, "publish a demo model whose story (input shift, canary regression, late labels) shows every report, alert and notification within five minutes")
	opts.auth.register(fs)
	fs.TextVar(&opts.logLevel, "log-level", zapcore.InfoLevel, "log `level`: debug, info, warn, error")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	if only != "" {
		for _, name := range strings.Split(only, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(componentNames(), name) {
				return fmt.Errorf("%w: unknown service %q in --only (known: %s)", errUsage, name, strings.Join(componentNames(), ", "))
			}
			opts.only = append(opts.only, name)
		}
	}
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, opts.logLevel)
	defer func() { _ = log.Sync() }()
	return (&Main{Options: opts, Config: cfg, Log: log, Stdout: stdout}).Run(ctx)
}

// Main wires Lookout together: the NATS connection (and the embedded
// server), the streams, the HTTP endpoints and the services.
type Main struct {
	Options runOptions
	Config  Config
	Log     *zap.Logger
	Stdout  io.Writer

	server   *server.Server
	nc       *nats.Conn
	registry *prometheus.Registry
	http     *http.Server

	// demo tunes the --demo story for tests.
	demo demoOptions

	// ingestHTTP serves POST /v1/predictions, /v1/feedback and /v1/logs.
	ingestHTTP *httpingest.Handler

	health  *service.Health
	wandb   http.Handler // POST /v1/hooks/wandb
	mu      sync.Mutex
	running map[string]bool
}

// Run starts everything, blocks until ctx is cancelled or a service fails,
// then shuts down in order: services first (they finish or hand back their
// work), then the connection, then the embedded server.
func (m *Main) Run(ctx context.Context) error {
	defer m.close()
	// Checked again here for a Main built without loadConfig: a bad value
	// must fail before anything starts or connects.
	if err := m.Config.Validate(); err != nil {
		return err
	}
	handlers := []nats.Option{
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own drain at shutdown
				m.Log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { m.Log.Info("nats reconnected", zap.String("url", c.ConnectedUrlRedacted())) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			m.Log.Warn("nats error", fields...)
		}),
	}
	var nc *nats.Conn
	if m.Options.natsURL == "" {
		dataDir, err := filepath.Abs(m.Options.dataDir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
		// The services' own user: made now, known only to this process,
		// which reaches the server through memory.
		internal := natsbus.NewInternalCredentials()
		m.server, err = natsbus.StartEmbedded(natsbus.EmbeddedOptions{
			Listen: m.Options.listen, DataDir: dataDir,
			Users: m.Config.NATS.Users, TLS: m.Config.NATS.TLS,
			Subjects: natsbus.NewSubjects(m.Config.NATS.Prefix), Internal: internal,
		})
		if err != nil {
			return err
		}
		url := m.server.ClientURL()
		fmt.Fprintf(m.Stdout, "lookout: NATS listening on %s (JetStream data in %s)\n", url, filepath.Join(dataDir, "jetstream"))
		m.Log.Info("embedded nats started", zap.String("url", url), zap.String("data", dataDir),
			zap.Int("users", len(m.Config.NATS.Users)), zap.Bool("tls", m.Config.NATS.TLS.Enabled()))
		if nc, err = natsbus.ConnectInProcess(m.server, "lookout run", internal, handlers...); err != nil {
			return err
		}
	} else {
		var err error
		// The services' inbox is not the one outside users may read.
		opts := append(handlers, nats.CustomInboxPrefix(natsbus.InboxPrefix))
		if nc, err = natsbus.Connect(m.Options.natsURL, "lookout run", m.Options.auth.resolve(), opts...); err != nil {
			return err
		}
		m.Log.Info("nats connected", zap.String("url", nc.ConnectedUrlRedacted()))
	}
	m.nc = nc
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(m.Config.Ingest().MaxInFlight),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
	)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	subjects := natsbus.NewSubjects(m.Config.NATS.Prefix)
	streamOpts := natsbus.DefaultStreamOptions()
	if m.Config.NATS.Retention > 0 {
		streamOpts.Retention = m.Config.NATS.Retention
	}
	streamOpts.Replicas = m.Config.NATS.Replicas
	streamOpts.Partitions = m.Config.NATS.Partitions
	setupCtx, cancelSetup := context.WithTimeout(ctx, natsbus.SetupTimeout)
	err = natsbus.EnsureStreams(setupCtx, js, subjects, streamOpts)
	var versionsKV jetstream.KeyValue
	if err == nil {
		// Beside the streams: `lookout version set` and the W&B hook only
		// bind it.
		versionsKV, err = versions.Ensure(setupCtx, js, subjects, streamOpts.Replicas)
	}
	cancelSetup()
	if err != nil {
		return err
	}
	runs := versions.NewCache()
	if err := runs.Watch(ctx, versionsKV, m.Log.Named("versions")); err != nil {
		return err
	}

	if m.Options.demo {
		// Before the services are built: the alert service must know the
		// demo's log sink.
		sink, err := startDemoSink(m.Log.Named("demo"))
		if err != nil {
			return err
		}
		defer sink.Close()
		m.Config = demoConfig(m.Config, sink.url, m.Options.configPath == "")
	}

	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.health = service.NewHealth()
	// 16k predictions (of at most 2 KiB each): about what the readers of
	// the predictions stream are apart while they keep up.
	stored := event.NewStored(1 << 14)
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "lookout_stored_decodes_total", Help: "Predictions read back from the predictions stream and decoded (a read served from memory is not counted).",
	}, func() float64 { _, misses := stored.Counts(); return float64(misses) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "lookout_stored_decode_hits_total", Help: "Predictions read back from the predictions stream that another service of this process had decoded.",
		}, func() float64 { hits, _ := stored.Counts(); return float64(hits) }))
	env := service.Env{
		NC: nc, JS: js, Subjects: subjects, Log: m.Log, Metrics: m.registry, Health: m.health,
		Stored:     stored,
		DataDir:    m.Options.dataDir,
		Runs:       runs.Run,
		Partitions: m.Config.NATS.Partitions,
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go boundMemory(runCtx)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	// abort stops what started and returns why: a service's failure, which
	// is what cancelled a step that then failed, comes first.
	abort := func(err error) error {
		cancel()
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		return err
	}
	m.running = make(map[string]bool)
	for _, c := range components {
		name := c.Name()
		if len(m.Options.only) > 0 && !slices.Contains(m.Options.only, name) {
			continue
		}
		svc, err := c.Build(env.With(name), m.Config.section(c))
		if err != nil {
			return abort(fmt.Errorf("%s: %w", name, err))
		}
		m.setRunning(name, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := svc.Run(runCtx)
			m.setRunning(name, false)
			if err != nil && runCtx.Err() == nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err) })
				m.Log.Error("service failed; stopping lookout", zap.String("service", name), zap.Error(err))
				cancel()
			}
		}()
	}
	if m.Options.demo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runDemo(runCtx, js, subjects, m.Log.Named("demo"), m.demo)
		}()
	}
	// The HTTP input publishes on the input subjects, whichever process
	// runs ingest and feedback; it opens its schema bucket first.
	if m.ingestHTTP, err = httpingest.New(runCtx, httpingest.Options{
		NC: nc, JS: js, Subjects: subjects, Log: m.Log.Named("httpingest"), Metrics: m.registry,
		Config: m.Config.OTLP, MaxMessageBytes: m.Config.Ingest().MaxMessageBytes,
	}); err != nil {
		return abort(err)
	}
	// Health and metrics come up once every service has started, so the
	// first /healthz already lists them all.
	if m.wandb, err = newWandbHook(m.Config, js, m.Log.Named("wandb")); err != nil {
		return abort(fmt.Errorf("wandb: %w", err))
	}
	dash := dashboard.New(dashboard.Options{
		JS: js, Subjects: subjects, Log: m.Log.Named("dashboard"), Metrics: m.registry, User: os.Getenv("USER"),
		TopFeatures: m.Config.Drift().MetricsTopFeatures,
		Firing:      func(ctx context.Context) ([]alerting.Alert, error) { return alert.FiringAlerts(ctx, js, subjects) },
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The dashboard's history is a view: losing it is logged, and
		// does not stop the services.
		if err := dash.Run(runCtx); err != nil && runCtx.Err() == nil {
			m.Log.Error("dashboard index stopped", zap.Error(err))
		}
	}()
	if err := m.serveHTTP(dash); err != nil {
		return abort(err)
	}
	m.Log.Info("lookout running", zap.Strings("services", m.runningNames()))
	<-runCtx.Done()
	m.Log.Info("shutting down")
	wg.Wait()
	return firstErr
}

func (m *Main) setRunning(name string, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running[name] = on
}

func (m *Main) runningNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name, on := range m.running {
		if on {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// serveHTTP starts the dashboard, /metrics and /healthz.
func (m *Main) serveHTTP(dash http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("/", dash)
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
	mux.HandleFunc("/healthz", m.healthz)
	// Read at start, not at load: a token_file is a secret mounted for
	// the process, and an unreadable one must stop it here.
	token, err := m.Config.HTTP.Secret()
	if err != nil {
		return fmt.Errorf("config: http.%w", err)
	}
	// The W&B hook checks the automation's own secret (wandb.secret) and
	// refuses everything without one.
	guarded := webauth.New(webauth.Options{Token: token, Log: m.Log.Named("http"), SelfVerified: []string{"/v1/hooks/"}}, mux)
	if m.ingestHTTP != nil {
		m.ingestHTTP.Register(mux)
	}
	mux.Handle("POST /v1/hooks/wandb", m.wandb)
	ln, err := net.Listen("tcp", m.Options.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	m.http = &http.Server{Handler: guarded, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server failed", zap.Error(err))
		}
	}()
	fmt.Fprintf(m.Stdout, "lookout: dashboard on http://%s/\n", ln.Addr())
	fmt.Fprintf(m.Stdout, "lookout: metrics on http://%s/metrics, health on http://%s/healthz\n", ln.Addr(), ln.Addr())
	m.Log.Info("http listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// healthz answers 200 while NATS is connected, every service runs and
// every consumer works: a consumer deleted from outside, or failing, makes
// it 503 until the consumer is back.
func (m *Main) healthz(w http.ResponseWriter, _ *http.Request) {
	parts, partsOK := m.health.Snapshot()
	status := struct {
		Status    string            `json:"status"`
		NATS      string            `json:"nats"`
		Services  map[string]bool   `json:"services"`
		Consumers map[string]string `json:"consumers"`
	}{Status: "ok", NATS: m.nc.Status().String(), Services: map[string]bool{}, Consumers: parts}
	if !partsOK {
		status.Status = "degraded"
	}
	m.mu.Lock()
	for name, on := range m.running {
		status.Services[name] = on
		if !on {
			status.Status = "degraded"
		}
	}
	m.mu.Unlock()
	if !m.nc.IsConnected() {
		status.Status = "degraded"
	}
	w.Header().Set("Content-Type", "application/json")
	if status.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(status)
}

func (m *Main) close() {
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = m.http.Shutdown(ctx)
		cancel()
	}
	if m.nc != nil {
		// Drain flushes what the services published and acknowledged.
		if err := m.nc.Drain(); err != nil {
			m.nc.Close()
		}
		for !m.nc.IsClosed() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if m.server != nil {
		m.server.Shutdown()
		m.server.WaitForShutdown()
		m.Log.Info("embedded nats stopped")
	}
}
