// The checks of a compose file that trusts nothing: passwords from the env
// file, PostgreSQL asking every connection for one, the API's key folder.
package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// The password in the env file that each role's connections use.
var rolePasswordVar = map[string]string{
	"eie":        "EIE_POSTGRES_PASSWORD",
	"eie_owner":  "EIE_OWNER_PASSWORD",
	"eie_writer": "EIE_WRITER_PASSWORD",
	"eie_reader": "EIE_READER_PASSWORD",
}

// Nothing trusted: PostgreSQL asks every connection for a password, each
// password comes from the env file, the file will not load without them,
// and the API reads its keys from the mounted key folder.
func checkSecrets(ctx context.Context, p *types.Project, path string, dotEnv map[string]string) {
	distinct := map[string]string{}
	for role, v := range rolePasswordVar {
		pw := dotEnv[v]
		if pw == "" {
			fail("env file: no %s (the password of %s)", v, role)
			continue
		}
		if other, dup := distinct[pw]; dup {
			fail("env file: %s and %s are the same password", v, other)
		}
		distinct[pw] = v
	}

	// Without the env file, `docker compose` must refuse rather than start
	// with empty passwords.
	if empty, err := os.CreateTemp("", "eie-compose-env-*"); err != nil {
		fail("temporary env file: %v", err)
	} else {
		empty.Close()
		defer os.Remove(empty.Name())
		if _, err := load(ctx, path, empty.Name(), nil); err == nil {
			fail("loads with an empty env file: the passwords would be empty, not required")
		} else if !strings.Contains(err.Error(), "PASSWORD") && !strings.Contains(err.Error(), "EIE_UID") {
			fail("with an empty env file: refused, but not for a password: %v", err)
		} else {
			ok("refused without an env file: %v", err)
		}
	}

	if pg, found := p.Services["postgres"]; found {
		if m := env(pg, "POSTGRES_HOST_AUTH_METHOD"); m != "" && m != "scram-sha-256" {
			fail("postgres: POSTGRES_HOST_AUTH_METHOD %q; connections must give a password (scram-sha-256)", m)
		}
		if env(pg, "POSTGRES_PASSWORD") != dotEnv["EIE_POSTGRES_PASSWORD"] {
			fail("postgres: POSTGRES_PASSWORD is not the env file's EIE_POSTGRES_PASSWORD")
		}
		// The image's initdb trusts the socket, and the host lines it writes
		// itself, unless told otherwise.
		for _, want := range []string{"--auth-local=scram-sha-256", "--auth-host=scram-sha-256"} {
			if !slices.Contains(strings.Fields(env(pg, "POSTGRES_INITDB_ARGS")), want) {
				fail("postgres: POSTGRES_INITDB_ARGS %q lacks %s", env(pg, "POSTGRES_INITDB_ARGS"), want)
			}
		}
		ok("postgres: passwords (scram-sha-256) on every connection, the superuser's from the env file")
	}

	for name, s := range p.Services {
		raw, set := s.Environment["DATABASE_URL"]
		if !set || raw == nil {
			continue
		}
		u, err := url.Parse(*raw)
		if err != nil {
			continue // checkRoleURL says so
		}
		if _, has := u.User.Password(); has {
			fail("%s: a password in DATABASE_URL, in the compose file; give it as PGPASSWORD from the env file", name)
		}
		role := u.User.Username()
		want, known := rolePasswordVar[role]
		switch {
		case !known:
			fail("%s: connects as %q, none of the roles with a password in the env file", name, role)
		case env(s, "PGPASSWORD") != dotEnv[want]:
			fail("%s: PGPASSWORD is not the env file's %s (the password of %s)", name, want, role)
		default:
			ok("%s: connects as %s with the env file's %s", name, role, want)
		}
	}
	if setup, found := p.Services["setup"]; found {
		for _, v := range []string{"EIE_OWNER_PASSWORD", "EIE_WRITER_PASSWORD", "EIE_READER_PASSWORD"} {
			if env(setup, v) != dotEnv[v] {
				fail("setup: %s is not the env file's (eie-admin roles sets the roles' passwords from it)", v)
			}
		}
	}

	api, found := p.Services["api"]
	if !found {
		return
	}
	if _, set := api.Environment["EIE_API_KEYS"]; set {
		fail("api: EIE_API_KEYS set; the keys belong in the mounted key file")
	}
	keysFile := env(api, "EIE_API_KEYS_FILE")
	if keysFile == "" {
		fail("api: no EIE_API_KEYS_FILE; writes would have no keys")
		return
	}
	keysDir := dotEnv["EIE_KEYS_DIR"]
	if keysDir == "" {
		fail("env file: no EIE_KEYS_DIR (the key folder)")
	} else if !filepath.IsAbs(keysDir) {
		keysDir = filepath.Join(filepath.Dir(path), keysDir)
	}
	mounted := false
	for _, v := range api.Volumes {
		if v.Target != filepath.Dir(keysFile) {
			continue
		}
		mounted = true
		switch {
		case v.Type != types.VolumeTypeBind:
			fail("api: %s is a %s volume, expected the host's key folder (bind)", v.Target, v.Type)
		case filepath.Clean(v.Source) != filepath.Clean(keysDir):
			fail("api: %s mounts %s, expected the env file's EIE_KEYS_DIR %s", v.Target, v.Source, keysDir)
		case !v.ReadOnly:
			fail("api: the key folder %s is mounted writable; the API only reads it", v.Target)
		case v.Bind == nil || bool(v.Bind.CreateHostPath):
			fail("api: a missing key folder would be made empty by Docker (bind.create_host_path: false)")
		default:
			ok("api: keys from %s, the env file's key folder mounted read-only", keysFile)
		}
	}
	if !mounted {
		fail("api: nothing mounted at %s, the folder of EIE_API_KEYS_FILE", filepath.Dir(keysFile))
	}
	if want := dotEnv["EIE_UID"] + ":" + dotEnv["EIE_GID"]; api.User != want {
		fail("api: runs as %q, expected the env file's %q (the key file is theirs, mode 0600)", api.User, want)
	}
}
