package natsbus

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Role is what an outside user may do on the bus. Lookout's own services
// use an internal user with every permission instead, whose credentials
// never leave the process.
type Role string

// The roles of the contract.
const (
	// RolePublisher may publish predictions and feedback, nothing else.
	RolePublisher Role = "publisher"
	// RoleReader may subscribe to predictions, rejections, reports and
	// alerts, and read them back, but writes nothing.
	RoleReader Role = "reader"
	// RoleAdmin is a reader that may also manage silences, references and
	// model versions: what the CLI needs.
	RoleAdmin Role = "admin"
)

// Roles lists the roles a configured user may have.
var Roles = []Role{RolePublisher, RoleReader, RoleAdmin}

// Buckets that outside users may touch: admins write them, readers read
// the alert state. Every other bucket (leases, checkpoints, canary state,
// notifications) is the internal user's alone. Roles name the bucket under
// the prefix, as StreamName does for streams.
const (
	BucketSilences   = "SILENCES"
	BucketReferences = "REFERENCES"
	BucketVersions   = "VERSIONS"
	BucketAlertState = "ALERT_STATE"
)

// InboxPrefix is the inbox of Lookout's internal connections. It is not
// under _INBOX, the one outside users may subscribe to for their replies,
// so that no outside user can read what the services pull from their
// consumers.
const InboxPrefix = "_LOOKOUT_INBOX"

// User is one outside user of the embedded server: YAML `nats.users`.
type User struct {
	User string `yaml:"user"`
	// Password, or PasswordFile holding it, or Nkey: exactly one. A
	// password may be a bcrypt hash ($2a$...), as nats-server accepts.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Nkey is the user's public nkey (U...); the client signs with its seed.
	Nkey string `yaml:"nkey"`
	Role Role   `yaml:"role"`
}

// TLS is the embedded server's TLS: YAML `nats.tls`. With CA set, clients
// must present a certificate it signed.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

// Enabled says whether TLS is configured at all.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

// ValidateUsers checks users as the config loader must, naming the key of
// the first problem: every user named once, with one credential and a known
// role. It reads no file.
func ValidateUsers(users []User, key string) error {
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		at := fmt.Sprintf("%s[%d]", key, i)
		credentials := 0
		for _, set := range []bool{u.Password != "", u.PasswordFile != "", u.Nkey != ""} {
			if set {
				credentials++
			}
		}
		switch {
		case u.Nkey == "" && u.User == "":
			return fmt.Errorf("%s.user: required", at)
		case u.Nkey != "" && !nkeys.IsValidPublicUserKey(u.Nkey):
			return fmt.Errorf("%s.nkey: not a user's public nkey (U...)", at)
		case credentials != 1:
			return fmt.Errorf("%s: want exactly one of password, password_file and nkey", at)
		case !validRole(u.Role):
			return fmt.Errorf("%s.role: %q is not one of %s", at, u.Role, roleList())
		}
		name := u.User + "\x00" + u.Nkey
		if seen[name] {
			return fmt.Errorf("%s: user %q listed twice", at, u.User+u.Nkey)
		}
		seen[name] = true
	}
	return nil
}

// ValidateTLS checks that cert and key come together and that the CA, if
// set, comes with them.
func ValidateTLS(t TLS, key string) error {
	if !t.Enabled() {
		return nil
	}
	if t.Cert == "" || t.Key == "" {
		return fmt.Errorf("%s: cert and key are both required", key)
	}
	return nil
}

func validRole(r Role) bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// Credentials are the internal user's: made at start, kept in memory.
type Credentials struct {
	User     string
	Password string
}

// NewInternalCredentials returns a fresh internal user with a random
// 256-bit password.
func NewInternalCredentials() Credentials {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return Credentials{User: "lookout-internal", Password: hex.EncodeToString(b[:])}
}

// Authorization returns the embedded server's users: the internal one with
// every permission, and each configured user with its role's permissions.
// It reads password files. With no configured users it returns nothing:
// the server accepts anonymous clients, as a newcomer's `lookout run` does.
func (s Subjects) Authorization(users []User, internal Credentials) ([]*server.User, []*server.NkeyUser, error) {
	if len(users) == 0 {
		return nil, nil, nil
	}
	out := []*server.User{{Username: internal.User, Password: internal.Password}}
	var nkeyUsers []*server.NkeyUser
	for _, u := range users {
		perms := s.Permissions(u.Role)
		if u.Nkey != "" {
			nkeyUsers = append(nkeyUsers, &server.NkeyUser{Nkey: u.Nkey, Permissions: perms})
			continue
		}
		password := u.Password
		if u.PasswordFile != "" {
			b, err := os.ReadFile(u.PasswordFile)
			if err != nil {
				return nil, nil, fmt.Errorf("nats user %s: password_file: %w", u.User, err)
			}
			password = strings.TrimSpace(string(b))
			if password == "" {
				return nil, nil, fmt.Errorf("nats user %s: password_file %s is empty", u.User, u.PasswordFile)
			}
		}
		if u.User == internal.User {
			return nil, nil, fmt.Errorf("nats user %s: the name is Lookout's own", u.User)
		}
		out = append(out, &server.User{Username: u.User, Password: password, Permissions: perms})
	}
	return out, nkeyUsers, nil
}

// Permissions returns what a user of role may publish and subscribe to.
// They are allow lists: anything not named is refused by the server, so a
// subject or API added later is closed until it is added here.
//
// Readers read history with JetStream direct gets, never with consumers:
// a consumer API open to them could also update, pull from or delete the
// services' durable consumers, whose names permissions cannot tell apart.
func (s Subjects) Permissions(role Role) *server.Permissions {
	// Every user receives its replies (JetStream acknowledgements, API
	// answers) on the standard inbox.
	replies := []string{"_INBOX.>"}
	switch role {
	case RolePublisher:
		return &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				s.Prefix + "." + KindIngest + ".>",
				s.Prefix + "." + KindFeedback + ".>",
				// Which stream keeps a subject: `lookout replay` checks
				// before it publishes.
				"$JS.API.INFO", "$JS.API.STREAM.NAMES",
			}},
			Subscribe: &server.SubjectPermission{Allow: replies},
		}
	case RoleReader:
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: s.readAPI()},
			Subscribe: &server.SubjectPermission{Allow: append(s.readable(), replies...)},
		}
	case RoleAdmin:
		publish := s.readAPI()
		for _, b := range []string{BucketSilences, BucketVersions} {
			name := s.StreamName(b)
			publish = append(publish, "$KV."+name+".>")
			publish = append(publish, consumerAPI("KV_"+name)...)
		}
		refs := s.StreamName(BucketReferences)
		publish = append(publish, "$O."+refs+".>", "$JS.API.STREAM.PURGE.OBJ_"+refs)
		publish = append(publish, consumerAPI("OBJ_"+refs)...)
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: publish},
			Subscribe: &server.SubjectPermission{Allow: append(s.readable(), replies...)},
		}
	}
	// An unknown role may do nothing; ValidateUsers refuses it earlier.
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Deny: []string{">"}},
		Subscribe: &server.SubjectPermission{Deny: []string{">"}},
	}
}

// readable are the subjects readers may subscribe to live.
func (s Subjects) readable() []string {
	kinds := []string{KindPredictions, KindRejected, KindDrift, KindCanary, KindPerformance, KindAlerts}
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = s.Prefix + "." + k + ".>"
	}
	return out
}

// readAPI is the JetStream API a reader may call: stream lookups and
// direct gets on the streams it may read, and the alert state, which
// `lookout alerts` lists with a key watch (an ephemeral consumer on a
// stream no service keeps a durable consumer on).
func (s Subjects) readAPI() []string {
	api := []string{"$JS.API.INFO", "$JS.API.STREAM.NAMES"}
	for _, role := range []string{StreamPredictions, StreamRejected, StreamReports, StreamAlerts} {
		name := s.StreamName(role)
		api = append(api, "$JS.API.STREAM.INFO."+name, "$JS.API.DIRECT.GET."+name, "$JS.API.DIRECT.GET."+name+".>")
	}
	api = append(api, consumerAPI("KV_"+s.StreamName(BucketAlertState))...)
	return api
}

// consumerAPI is what reading a bucket's stream with ephemeral consumers
// (key watches, object reads) takes; only for streams without any of the
// services' durable consumers.
func consumerAPI(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.DIRECT.GET." + stream, "$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.CONSUMER.CREATE." + stream, "$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".*",
		"$JS.API.CONSUMER.DELETE." + stream + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
		"$JS.FC." + stream + ".>",
	}
}
