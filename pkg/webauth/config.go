package webauth

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Config is the `http` section of Lookout's configuration: the token that
// protects every page and API of the HTTP listener. Both empty: no token,
// the listener is open (it binds 127.0.0.1 by default).
type Config struct {
	// Token is the shared secret itself.
	Token string `yaml:"token"`
	// TokenFile is a file holding the token (e.g. a Docker or Kubernetes
	// secret), read at start; surrounding white space is trimmed.
	TokenFile string `yaml:"token_file"`
}

// Validate checks that at most one of token and token_file is set and that
// token_file holds a token. Each error names its key relative to the
// section (`token_file: ...`).
func (c Config) Validate() error {
	if c.Token != "" && c.TokenFile != "" {
		return errors.New("token_file: set only one of token and token_file")
	}
	if c.Token != "" && strings.TrimSpace(c.Token) != c.Token {
		return errors.New("token: has leading or trailing white space")
	}
	if c.TokenFile != "" {
		if _, err := c.Secret(); err != nil {
			return err
		}
	}
	return nil
}

// Secret returns the token: Token, or TokenFile's content trimmed. It
// returns "" when neither is set, and an error naming token_file when the
// file cannot be read or is empty (an empty file must never mean "open").
func (c Config) Secret() (string, error) {
	if c.TokenFile == "" {
		return c.Token, nil
	}
	data, err := os.ReadFile(c.TokenFile)
	if err != nil {
		// The path is not secret; the content never appears in errors.
		return "", fmt.Errorf("token_file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("token_file: %s is empty", c.TokenFile)
	}
	return token, nil
}
