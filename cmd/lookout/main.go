// Command lookout keeps machine-learning models honest in production: one
// binary with every Lookout service and the tools to feed and query them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// command is one subcommand of lookout. Each registers itself in init.
type command struct {
	name    string
	usage   string // one line: arguments and what it does
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	aliases []string
}

var commands []command

func register(c command) { commands = append(commands, c) }

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name || slices.Contains(c.aliases, name) {
			return c, true
		}
	}
	return command{}, false
}

// errUsage marks an error in how a command was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := findCommand(args[0])
	if !ok {
		fmt.Fprintf(stderr, "lookout: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	stopProfiles := startProfiles(stderr)
	err := c.run(ctx, args[1:], stdout, stderr)
	stopProfiles()
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "lookout %s: %v\n", c.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "lookout %s: %v\n", c.name, err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "lookout keeps machine-learning models honest in production.\n\nUsage:")
	sorted := slices.Clone(commands)
	slices.SortFunc(sorted, func(a, b command) int { return strings.Compare(a.name, b.name) })
	for _, c := range sorted {
		fmt.Fprintf(w, "  lookout %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'lookout COMMAND -h' for a command's flags.")
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// clientFlags are the flags of every command that talks to NATS.
type clientFlags struct {
	natsURL    string
	configPath string
	auth       natsAuthFlags
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.natsURL, "nats", "nats://127.0.0.1:4222", "NATS server `URL` (a comma-separated list for a cluster)")
	fs.StringVar(&f.configPath, "config", "", "YAML configuration `file`")
	f.auth.register(fs)
}

func (f *clientFlags) load() (Config, error) { return loadConfig(f.configPath) }

// connect opens a NATS connection and a JetStream context for a client
// command.
func (f *clientFlags) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := natsbus.Connect(f.natsURL, "lookout "+name, f.auth.resolve())
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// natsAuthFlags are the credentials and TLS files a client presents to a
// NATS server, from flags or the environment (LOOKOUT_NATS_*). Secrets
// themselves are read from files or the environment only: a flag's value
// would show in the process list.
type natsAuthFlags struct {
	auth natsbus.ClientAuth
}

func (a *natsAuthFlags) register(fs *flag.FlagSet) {
	env := os.Getenv
	fs.StringVar(&a.auth.CredsFile, "nats-creds", env("LOOKOUT_NATS_CREDS"), "NATS credentials `file` (JWT and seed; env LOOKOUT_NATS_CREDS)")
	fs.StringVar(&a.auth.NkeySeedFile, "nats-nkey", env("LOOKOUT_NATS_NKEY"), "NATS nkey seed `file` (env LOOKOUT_NATS_NKEY)")
	fs.StringVar(&a.auth.User, "nats-user", env("LOOKOUT_NATS_USER"), "NATS `user` (env LOOKOUT_NATS_USER); the password from --nats-password-file or LOOKOUT_NATS_PASSWORD")
	fs.StringVar(&a.auth.PasswordFile, "nats-password-file", env("LOOKOUT_NATS_PASSWORD_FILE"), "`file` holding the NATS password (env LOOKOUT_NATS_PASSWORD_FILE)")
	fs.StringVar(&a.auth.TokenFile, "nats-token-file", env("LOOKOUT_NATS_TOKEN_FILE"), "`file` holding a NATS token (or env LOOKOUT_NATS_TOKEN)")
	fs.StringVar(&a.auth.CA, "nats-ca", env("LOOKOUT_NATS_CA"), "CA certificate `file` that signed the NATS server's (env LOOKOUT_NATS_CA)")
	fs.StringVar(&a.auth.Cert, "nats-cert", env("LOOKOUT_NATS_CERT"), "client certificate `file` for a server that verifies clients (env LOOKOUT_NATS_CERT)")
	fs.StringVar(&a.auth.Key, "nats-key", env("LOOKOUT_NATS_KEY"), "client key `file` (env LOOKOUT_NATS_KEY)")
}

// resolve returns the credentials, with the secrets given in the
// environment where no file names them.
func (a *natsAuthFlags) resolve() natsbus.ClientAuth {
	auth := a.auth
	if auth.PasswordFile == "" {
		auth.Password = os.Getenv("LOOKOUT_NATS_PASSWORD")
	}
	if auth.TokenFile == "" {
		auth.Token = os.Getenv("LOOKOUT_NATS_TOKEN")
	}
	return auth
}

// subjects returns the subjects under the configured prefix.
func subjectsFor(cfg Config) natsbus.Subjects { return natsbus.NewSubjects(cfg.NATS.Prefix) }

// newLogger returns a structured logger writing JSON lines to w, or
// console-friendly lines when w is a terminal.
func newLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder // "5m0s", not 300
	var enc zapcore.Encoder
	if isTerminal(w) {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
