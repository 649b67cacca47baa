package image

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/internal/atomicfile"
)

// dockerHubAuthKey is where Docker keeps Docker Hub credentials.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// DefaultAuthFile is where berth login writes credentials:
// $BERTH_AUTH_FILE, else $XDG_CONFIG_HOME/berth/config.json, else
// ~/.config/berth/config.json. The format is Docker's config.json.
func DefaultAuthFile() string {
	if p := os.Getenv("BERTH_AUTH_FILE"); p != "" {
		return p
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "berth", "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "berth", "config.json")
}

// DockerAuthFile is Docker's own config.json ($DOCKER_CONFIG or ~/.docker).
func DockerAuthFile() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// authKey is the config.json key for a registry host.
func authKey(registry string) string {
	switch registry {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return dockerHubAuthKey
	}
	return registry
}

func readAuthFile(path string) (map[string]json.RawMessage, map[string]authEntry, error) {
	raw := map[string]json.RawMessage{}
	auths := map[string]authEntry{}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return raw, auths, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read auth file: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return raw, auths, nil
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	if a, ok := raw["auths"]; ok {
		if err := json.Unmarshal(a, &auths); err != nil {
			return nil, nil, fmt.Errorf("auth file %s: %w", path, err)
		}
	}
	return raw, auths, nil
}

func writeAuthFile(path string, raw map[string]json.RawMessage, auths map[string]authEntry) error {
	a, err := json.Marshal(auths)
	if err != nil {
		return fmt.Errorf("write auth file: %w", err)
	}
	raw["auths"] = a
	b, err := json.MarshalIndent(raw, "", "\t")
	if err != nil {
		return fmt.Errorf("write auth file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write auth file: %w", err)
	}
	if err := atomicfile.WriteSync(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write auth file: %w", err)
	}
	return nil
}

// SaveLogin stores user/password for registry in the auth file.
func SaveLogin(authFile, registry, user, password string) error {
	raw, auths, err := readAuthFile(authFile)
	if err != nil {
		return err
	}
	auths[authKey(registry)] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	return writeAuthFile(authFile, raw, auths)
}

// RemoveLogin forgets registry's credentials; it reports whether there were any.
func RemoveLogin(authFile, registry string) (bool, error) {
	raw, auths, err := readAuthFile(authFile)
	if err != nil {
		return false, err
	}
	k := authKey(registry)
	if _, ok := auths[k]; !ok {
		return false, nil
	}
	delete(auths, k)
	return true, writeAuthFile(authFile, raw, auths)
}

// Keychain resolves credentials from Docker-style auth files, the first
// file that has an entry for the registry winning.
type Keychain struct {
	Files []string
}

// DefaultKeychain reads berth's auth file, then Docker's.
func DefaultKeychain() *Keychain {
	return &Keychain{Files: []string{DefaultAuthFile(), DockerAuthFile()}}
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	host := res.RegistryStr()
	keys := []string{authKey(host), host, "https://" + host, "http://" + host, "https://" + host + "/v1/", "https://" + host + "/v2/"}
	for _, f := range k.Files {
		if f == "" {
			continue
		}
		_, auths, err := readAuthFile(f)
		if err != nil {
			logrus.Warnf("ignoring auth file: %v", err)
			continue
		}
		for _, key := range keys {
			e, ok := auths[key]
			if !ok {
				continue
			}
			cfg := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
			if e.Auth != "" {
				dec, err := base64.StdEncoding.DecodeString(e.Auth)
				if err != nil {
					return nil, fmt.Errorf("auth file %s: entry %s: %w", f, key, err)
				}
				u, p, ok := strings.Cut(string(dec), ":")
				if !ok {
					return nil, fmt.Errorf("auth file %s: entry %s: bad auth field", f, key)
				}
				cfg.Username, cfg.Password = u, p
			}
			logrus.Debugf("using credentials for %s from %s", host, f)
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}
