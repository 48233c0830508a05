package natsbus

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configure the NATS server that `lookout run` embeds.
type EmbeddedOptions struct {
	// Listen is the client address, host:port; port -1 picks a free one.
	Listen string
	// DataDir holds JetStream's files (under DataDir/jetstream).
	DataDir string
	// Users, when any are given, are the only outside clients accepted,
	// each with its role's permissions (under Subjects' prefix); Internal
	// is then the user Lookout's own connections authenticate as.
	Users    []User
	Subjects Subjects
	Internal Credentials
	// TLS, when enabled, is required of every outside client.
	TLS TLS
}

// StartEmbedded starts a NATS server with JetStream and waits until it
// accepts clients. The caller shuts it down with Shutdown and
// WaitForShutdown.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portText, err)
	}
	serverOpts := &server.Options{
		ServerName: "lookout",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(opts.DataDir, "jetstream"),
		NoSigs:     true, // lookout handles signals and shuts the server down itself
		MaxPayload: 8 << 20,
		NoLog:      true,
	}
	if len(opts.Users) > 0 {
		if opts.Internal.User == "" {
			return nil, fmt.Errorf("embedded nats: users configured without internal credentials")
		}
		subjects := opts.Subjects
		if subjects.Prefix == "" {
			subjects = NewSubjects("")
		}
		serverOpts.Users, serverOpts.Nkeys, err = subjects.Authorization(opts.Users, opts.Internal)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
	}
	if opts.TLS.Enabled() {
		serverOpts.TLSConfig, err = server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: opts.TLS.Cert, KeyFile: opts.TLS.Key, CaFile: opts.TLS.CA, Verify: opts.TLS.CA != "",
		})
		if err != nil {
			return nil, fmt.Errorf("embedded nats: tls: %w", err)
		}
		serverOpts.TLS, serverOpts.TLSVerify = true, opts.TLS.CA != ""
		serverOpts.TLSTimeout = 5
	}
	ns, err := server.NewServer(serverOpts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready to accept clients on %s after 30s", opts.Listen)
	}
	return ns, nil
}

// ConnectInProcess connects to ns through memory, not the network, as
// Lookout's internal user: its credentials never leave the process, and no
// TLS is needed. Its inbox is InboxPrefix, which no outside user may read.
func ConnectInProcess(ns *server.Server, name string, internal Credentials, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.InProcessServer(ns), nats.CustomInboxPrefix(InboxPrefix)}
	if internal.User != "" {
		opts = append(opts, nats.UserInfo(internal.User, internal.Password))
	}
	nc, err := nats.Connect("", append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded server: %w", err)
	}
	return nc, nil
}
