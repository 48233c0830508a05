package natsbus

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// ClientAuth is how a client proves who it is to a NATS server that is not
// Lookout's own embedded one, and how it trusts the server: at most one of
// a creds file, an nkey seed, a user and password, or a token, plus TLS.
// Secrets come from files or the environment, never only from the URL.
type ClientAuth struct {
	// CredsFile is a decentralised-auth .creds file (JWT and seed).
	CredsFile string
	// NkeySeedFile holds the user's nkey seed (SU...).
	NkeySeedFile string
	// User with Password, or with PasswordFile holding it.
	User, Password, PasswordFile string
	// Token, or TokenFile holding it.
	Token, TokenFile string
	// CA verifies the server's certificate; Cert and Key are the client's,
	// for a server that verifies clients.
	CA, Cert, Key string
}

// Options returns the nats.Go options for a, reading the files it names.
func (a ClientAuth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	methods := 0
	if a.CredsFile != "" {
		methods++
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.NkeySeedFile != "" {
		methods++
		opt, err := nats.NkeyOptionFromSeed(a.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed: %w", err)
		}
		opts = append(opts, opt)
	}
	if a.User != "" || a.Password != "" || a.PasswordFile != "" {
		methods++
		password := a.Password
		if a.PasswordFile != "" {
			if a.Password != "" {
				return nil, errors.New("nats password: give a password or a password file, not both")
			}
			var err error
			if password, err = readSecret(a.PasswordFile); err != nil {
				return nil, fmt.Errorf("nats password file: %w", err)
			}
		}
		if a.User == "" {
			return nil, errors.New("nats password given without a user")
		}
		opts = append(opts, nats.UserInfo(a.User, password))
	}
	if a.Token != "" || a.TokenFile != "" {
		methods++
		token := a.Token
		if a.TokenFile != "" {
			if a.Token != "" {
				return nil, errors.New("nats token: give a token or a token file, not both")
			}
			var err error
			if token, err = readSecret(a.TokenFile); err != nil {
				return nil, fmt.Errorf("nats token file: %w", err)
			}
		}
		opts = append(opts, nats.Token(token))
	}
	if methods > 1 {
		return nil, errors.New("nats credentials: give one of a creds file, an nkey seed, a user and password, or a token")
	}
	if a.CA != "" {
		opts = append(opts, nats.RootCAs(a.CA))
	}
	if a.Cert != "" || a.Key != "" {
		if a.Cert == "" || a.Key == "" {
			return nil, errors.New("nats client certificate: cert and key are both required")
		}
		opts = append(opts, nats.ClientCert(a.Cert, a.Key))
	}
	return opts, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// Connect opens a client connection to urls (comma-separated for a
// cluster) with auth and extra options. Its error names the servers with
// any password in their URLs redacted.
func Connect(urls, name string, auth ClientAuth, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := auth.Options()
	if err != nil {
		return nil, err
	}
	opts = append(append([]nats.Option{nats.Name(name)}, opts...), extra...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(urls), err)
	}
	return nc, nil
}

// RedactURL returns urls (comma-separated) with each one's password or
// token replaced, for logs and errors.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, raw := range parts {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil {
			if strings.Contains(raw, "@") {
				parts[i] = "[unparsable URL redacted]"
			}
			continue
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				// A lone user in the URL is a token.
				u.User = url.User("xxxxx")
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
