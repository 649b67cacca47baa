package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/output"
	"github.com/berth-project/berth/internal/units"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{
			pullCommand(), pushCommand(), loginCommand(), logoutCommand(),
			imagesCommand("images"), loadCommand(), saveCommand(), importCommand(),
			tagCommand(), rmiCommand("rmi"), historyCommand(),
			&cli.Command{
				Name:  "image",
				Usage: "manage images",
				Subcommands: []*cli.Command{
					imagesCommand("ls"), imageInspectCommand(), historyCommand(), rmiCommand("rm"), imagePruneCommand(),
					imageMountCommand(), imageUnmountCommand(), pullCommand(), pushCommand(), tagCommand(),
					loadCommand(), saveCommand(), importCommand(),
				},
			},
		}
	})
}

// openImageStore opens the image store; rmi and prune ask the container
// store whether a container still uses an image.
func openImageStore(c *cli.Context) (*image.Store, error) {
	return image.OpenWithUsers(c.String("data-root"), container.Records{DataRoot: c.String("data-root")})
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func imgArgs(c *cli.Context, min, max int, what string) error {
	n := c.NArg()
	if n < min || (max >= 0 && n > max) {
		return usage(c, "usage: %s %s", c.Command.FullName(), what)
	}
	return nil
}

func remoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "tls-verify", Value: true, Usage: "require HTTPS and verify certificates (false allows plain HTTP)"},
		&cli.StringFlag{Name: "authfile", Usage: "auth file (default $BERTH_AUTH_FILE or ~/.config/berth/config.json)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
	}
}

func remoteOptions(c *cli.Context) image.RemoteOptions {
	kc := image.DefaultKeychain()
	if f := c.String("authfile"); f != "" {
		kc.Files = []string{f, image.DockerAuthFile()}
	}
	return image.RemoteOptions{InsecureTLS: !c.Bool("tls-verify"), Keychain: kc, Progress: os.Stdout, Quiet: c.Bool("quiet")}
}

func authFile(c *cli.Context) string {
	if f := c.String("authfile"); f != "" {
		return f
	}
	return image.DefaultAuthFile()
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image from a registry",
		ArgsUsage: "NAME[:TAG|@DIGEST]",
		Flags: append(remoteFlags(),
			&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] to pull from a manifest list (default: the host's)"}),
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, 1, "NAME[:TAG|@DIGEST]"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			ref := c.Args().First()
			img, err := s.Pull(ctx, ref, image.PullOptions{RemoteOptions: remoteOptions(c), Platform: c.String("platform")})
			if err != nil {
				return err
			}
			r, _ := image.ParseReference(ref)
			if !c.Bool("quiet") {
				fmt.Printf("Status: Downloaded image for %s (%s)\n", ref, img.ID)
			}
			fmt.Println(r.String())
			return nil
		},
	}
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push an image to a registry",
		ArgsUsage: "NAME[:TAG] [DESTINATION]",
		Flags:     remoteFlags(),
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, 2, "NAME[:TAG] [DESTINATION]"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			src, dst := c.Args().Get(0), c.Args().Get(0)
			if c.NArg() == 2 {
				dst = c.Args().Get(1)
			}
			_, err = s.PushAs(ctx, src, dst, image.PushOptions{RemoteOptions: remoteOptions(c)})
			return err
		},
	}
}

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "log in to a registry",
		ArgsUsage: "[REGISTRY]",
		Flags: append(remoteFlags(),
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user name"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "password (visible to other users in ps: prefer --password-stdin)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin"},
		),
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 0, 1, "[REGISTRY]"); err != nil {
				return err
			}
			reg := image.RegistryKey(c.Args().First())
			user, pass := c.String("username"), c.String("password")
			in := bufio.NewReader(os.Stdin)
			if c.Bool("password-stdin") {
				if pass != "" {
					return fmt.Errorf("login: --password and --password-stdin are mutually exclusive")
				}
				if user == "" {
					return fmt.Errorf("login: --password-stdin needs --username")
				}
				b, err := io.ReadAll(io.LimitReader(in, 1<<16))
				if err != nil {
					return fmt.Errorf("login: read password: %w", err)
				}
				pass = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return fmt.Errorf("login: no username given (-u)")
				}
				fmt.Fprint(os.Stderr, "Username: ")
				line, _ := in.ReadString('\n')
				user = strings.TrimSpace(line)
			}
			if pass == "" {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return fmt.Errorf("login: no password given (-p or --password-stdin)")
				}
				fmt.Fprint(os.Stderr, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(os.Stderr)
				if err != nil {
					return fmt.Errorf("login: read password: %w", err)
				}
				pass = string(b)
			}
			if user == "" || pass == "" {
				return fmt.Errorf("login: username and password are required")
			}
			ctx, stop := signalContext()
			defer stop()
			if err := image.Login(ctx, reg, user, pass, authFile(c), remoteOptions(c)); err != nil {
				return err
			}
			fmt.Println("Login Succeeded")
			return nil
		},
	}
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "log out from a registry",
		ArgsUsage: "[REGISTRY]",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "authfile", Usage: "auth file (default $BERTH_AUTH_FILE or ~/.config/berth/config.json)"}},
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 0, 1, "[REGISTRY]"); err != nil {
				return err
			}
			reg := image.RegistryKey(c.Args().First())
			ok, err := image.RemoveLogin(authFile(c), reg)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("not logged in to %s", reg)
			}
			fmt.Printf("Removing login credentials for %s\n", reg)
			return nil
		},
	}
}

// ---- listing ----

type imageRow struct {
	Repository   string
	Tag          string
	Digest       string
	ID           string
	CreatedSince string
	CreatedAt    string
	Size         string
	Containers   string
	full         *image.Image
}

func trunc(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// resolve finds the image of before= and since=.
func matchFilters(filters []string, repo, tag string, img *image.Image, resolve func(string) (*image.Image, error)) (bool, error) {
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return false, fmt.Errorf("bad filter %q (want key=value)", f)
		}
		switch k {
		case "reference":
			matched := false
			for _, r := range []string{repo, image.FamiliarName(repo)} {
				cands := []string{r}
				if tag != "" && tag != "<none>" {
					cands = append(cands, r+":"+tag)
				}
				for _, cand := range cands {
					m, err := path.Match(v, cand)
					if err != nil {
						return false, fmt.Errorf("bad filter %q: %w", f, err)
					}
					matched = matched || m
				}
			}
			if !matched {
				return false, nil
			}
		case "dangling":
			if (v == "true") != (len(img.RepoTags) == 0) {
				return false, nil
			}
		case "label":
			lk, lv, hasValue := strings.Cut(v, "=")
			got, ok := img.Config.Config.Labels[lk]
			if !ok || hasValue && got != lv {
				return false, nil
			}
		case "before", "since":
			ref, err := resolve(v)
			if err != nil {
				return false, fmt.Errorf("filter %s: %w", k, err)
			}
			if k == "before" && !img.Created().Before(ref.Created()) || k == "since" && !img.Created().After(ref.Created()) {
				return false, nil
			}
		case "until":
			t, err := parseTime(v)
			if err != nil {
				return false, fmt.Errorf("filter until: %w", err)
			}
			if !img.Created().Before(t) {
				return false, nil
			}
		default:
			return false, fmt.Errorf("unsupported filter %q", k)
		}
	}
	return true, nil
}

func imagesCommand(name string) *cli.Command {
	cmd := &cli.Command{
		Name:      name,
		Usage:     "list images",
		ArgsUsage: "[REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all images"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show image IDs"},
			&cli.BoolFlag{Name: "digests", Usage: "show digests"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate IDs"},
			&cli.StringFlag{Name: "format", Usage: "Go template (\"table ...\" prints a header; {{json .}})"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "reference=PATTERN, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE, until=TIME"},
		},
		Action: func(c *cli.Context) error {
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			filters := c.StringSlice("filter")
			if c.NArg() > 0 {
				filters = append(filters, "reference="+c.Args().First())
			}
			var rows []imageRow
			for _, img := range imgs {
				digests := map[string]string{}
				for _, rd := range img.RepoDigests {
					n, d, _ := strings.Cut(rd, "@")
					digests[n] = d
				}
				add := func(repo, tag string) error {
					ok, err := matchFilters(filters, repo, tag, img, s.Resolve)
					if err != nil || !ok {
						return err
					}
					dg := "<none>"
					if d, ok := digests[repo]; ok {
						dg = d
					}
					rows = append(rows, imageRow{
						Repository: image.FamiliarName(repo), Tag: tag, Digest: dg,
						ID: trunc(img.ID.String(), c.Bool("no-trunc")), CreatedSince: units.Ago(img.Created()),
						CreatedAt: img.Created().Format("2006-01-02 15:04:05 -0700 MST"), Size: units.HumanSize(img.Size),
						Containers: "N/A", full: img,
					})
					return nil
				}
				if len(img.RepoTags) == 0 {
					repo := "<none>"
					for n := range digests {
						repo = n
					}
					if err := add(repo, "<none>"); err != nil {
						return err
					}
				}
				for _, t := range img.RepoTags {
					n, tg := image.SplitTagged(t)
					if err := add(n, tg); err != nil {
						return err
					}
				}
			}
			for i := range rows {
				if rows[i].Repository == "<none>" {
					continue
				}
				rows[i].Repository = image.FamiliarName(rows[i].Repository)
			}
			if c.Bool("quiet") {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Println(r.ID)
					}
				}
				return nil
			}
			if f := c.String("format"); f != "" {
				return printTemplate(f, rows)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			if c.Bool("digests") {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				if c.Bool("digests") {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size)
				} else {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size)
				}
			}
			return tw.Flush()
		},
	}
	if name == "ls" {
		cmd.Aliases = []string{"list"}
	}
	return cmd
}

// printTemplate prints images with --format (the default table is
// images' own).
func printTemplate[T any](spec string, items []T) error {
	return output.List(os.Stdout, spec, output.Table{Default: "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
		Labels: map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}}, items)
}

// printTable prints items with --format spec, def being the default
// table's template.
func printTable[T any](spec, def string, labels map[string]string, items []T) error {
	return output.List(os.Stdout, spec, output.Table{Default: def, Labels: labels}, items)
}

// ---- archives ----

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images from a docker save or OCI archive (plain or compressed)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "read from this file instead of stdin"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing"},
		},
		Action: func(c *cli.Context) error {
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if p := c.String("input"); p != "" && p != "-" {
				f, err := os.Open(p)
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				defer f.Close()
				r = f
			} else if term.IsTerminal(int(os.Stdin.Fd())) {
				return fmt.Errorf("load: no input: give -i FILE or pipe an archive to stdin")
			}
			lines, err := s.Load(r)
			if err != nil {
				return err
			}
			if !c.Bool("quiet") {
				for _, l := range lines {
					fmt.Println(l)
				}
			}
			return nil
		},
	}
}

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "save images to an archive",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to this file instead of stdout"},
			&cli.StringFlag{Name: "format", Value: image.FormatDocker, Usage: "docker-archive or oci-archive"},
		},
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, -1, "IMAGE [IMAGE...]"); err != nil {
				return err
			}
			format := c.String("format")
			if format != image.FormatDocker && format != image.FormatOCI {
				return fmt.Errorf("save: unknown --format %q (docker-archive or oci-archive)", format)
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			out := c.String("output")
			if out == "" || out == "-" {
				if term.IsTerminal(int(os.Stdout.Fd())) {
					return fmt.Errorf("save: refusing to write an archive to a terminal; use -o FILE or redirect")
				}
				return s.Save(os.Stdout, c.Args().Slice(), format)
			}
			tmp := out + ".tmp"
			f, err := os.Create(tmp)
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			err = s.Save(bw, c.Args().Slice(), format)
			if err == nil {
				err = bw.Flush()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp, out)
			}
			if err != nil {
				os.Remove(tmp)
				return err // the store's and os errors already say what failed
			}
			return nil
		},
	}
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "create an image from a rootfs tarball",
		ArgsUsage: "FILE|- [REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "change", Aliases: []string{"c"}, Usage: "apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME)"},
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit message"},
		},
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, 2, "FILE|- [REPOSITORY[:TAG]]"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if p := c.Args().First(); p != "-" {
				f, err := os.Open(p)
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				r = f
			}
			img, err := s.Import(r, c.Args().Get(1), c.StringSlice("change"))
			if err != nil {
				return err
			}
			fmt.Println(img.ID)
			return nil
		},
	}
}

// ---- tags and removal ----

func tagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "give an image another name",
		ArgsUsage: "SOURCE TARGET",
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 2, 2, "SOURCE TARGET"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			return s.Tag(c.Args().Get(0), c.Args().Get(1))
		},
	}
}

func rmiCommand(name string) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     "remove images",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove even if in use or tagged several times"}},
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, -1, "IMAGE [IMAGE...]"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			var errs []string
			for _, ref := range c.Args().Slice() {
				lines, err := s.Remove(ref, c.Bool("force"))
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				for _, l := range lines {
					fmt.Println(l)
				}
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "; "))
			}
			return nil
		},
	}
}

func imagePruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove unused images",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all images no container uses, not just dangling ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			msg := "WARNING! This will remove all dangling images."
			if c.Bool("all") {
				msg = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !c.Bool("force") && !confirm(msg) {
				return nil
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			ids, freed, err := s.Prune(c.Bool("all"))
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				fmt.Println("Deleted Images:")
				for _, id := range ids {
					fmt.Println("deleted: " + id)
				}
				fmt.Println()
			}
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(freed))
			return nil
		},
	}
}

// ---- inspect and history ----

type dockerImageConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	// Docker's own fields, which the OCI config lacks: kept as the
	// image's config has them.
	Healthcheck json.RawMessage `json:"Healthcheck,omitempty"`
	OnBuild     []string        `json:"OnBuild"`
	Shell       []string        `json:"Shell,omitempty"`
}

type dockerImageInspect struct {
	ID            string            `json:"Id"`
	RepoTags      []string          `json:"RepoTags"`
	RepoDigests   []string          `json:"RepoDigests"`
	Parent        string            `json:"Parent"`
	Comment       string            `json:"Comment"`
	Created       string            `json:"Created"`
	DockerVersion string            `json:"DockerVersion"`
	Author        string            `json:"Author"`
	Config        dockerImageConfig `json:"Config"`
	Architecture  string            `json:"Architecture"`
	Variant       string            `json:"Variant,omitempty"`
	Os            string            `json:"Os"`
	Size          int64             `json:"Size"`
	GraphDriver   struct {
		Data map[string]string `json:"Data"`
		Name string            `json:"Name"`
	} `json:"GraphDriver"`
	RootFS struct {
		Type   string   `json:"Type"`
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
	Metadata struct {
		LastTagTime string `json:"LastTagTime"`
	} `json:"Metadata"`
	Descriptor struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	} `json:"Descriptor"`
}

func inspectImage(img *image.Image) dockerImageInspect {
	var d dockerImageInspect
	d.ID = img.ID.String()
	d.RepoTags = []string{}
	for _, t := range img.RepoTags {
		n, tg := image.SplitTagged(t)
		d.RepoTags = append(d.RepoTags, image.FamiliarName(n)+":"+tg)
	}
	d.RepoDigests = []string{}
	for _, rd := range img.RepoDigests {
		n, dg, _ := strings.Cut(rd, "@")
		d.RepoDigests = append(d.RepoDigests, image.FamiliarName(n)+"@"+dg)
	}
	if !img.Created().IsZero() {
		d.Created = img.Created().UTC().Format(time.RFC3339Nano)
	}
	d.Author = img.Config.Author
	for _, h := range img.Config.History {
		if h.Comment != "" {
			d.Comment = h.Comment
		}
	}
	cc := img.Config.Config
	d.Config = dockerImageConfig{User: cc.User, ExposedPorts: cc.ExposedPorts, Env: cc.Env, Entrypoint: cc.Entrypoint, Cmd: cc.Cmd,
		Volumes: cc.Volumes, WorkingDir: cc.WorkingDir, Labels: cc.Labels, StopSignal: cc.StopSignal}
	var ext struct {
		Config struct {
			Healthcheck json.RawMessage `json:"Healthcheck"`
			OnBuild     []string        `json:"OnBuild"`
			Shell       []string        `json:"Shell"`
		} `json:"config"`
	}
	if json.Unmarshal(img.RawConfig, &ext) == nil {
		d.Config.Healthcheck, d.Config.OnBuild, d.Config.Shell = ext.Config.Healthcheck, ext.Config.OnBuild, ext.Config.Shell
	}
	d.Architecture, d.Variant, d.Os = img.Config.Architecture, img.Config.Variant, img.Config.OS
	d.Size = img.Size
	d.GraphDriver.Name = "overlay2"
	dirs := img.LayerDirs()
	if len(dirs) > 0 {
		var lower []string
		for i := len(dirs) - 2; i >= 0; i-- {
			lower = append(lower, dirs[i])
		}
		d.GraphDriver.Data = map[string]string{"UpperDir": dirs[len(dirs)-1], "LowerDir": strings.Join(lower, ":")}
	}
	d.RootFS.Type = "layers"
	d.RootFS.Layers = []string{}
	for _, l := range img.Config.RootFS.DiffIDs {
		d.RootFS.Layers = append(d.RootFS.Layers, l.String())
	}
	d.Metadata.LastTagTime = img.Added.Format(time.RFC3339Nano)
	d.Descriptor.MediaType, d.Descriptor.Digest, d.Descriptor.Size = img.MediaType, img.ManifestDigest.String(), len(img.RawManifest)
	return d
}

func imageInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show images as JSON",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags:     inspectFlags(),
		Action:    func(c *cli.Context) error { return inspectAction(c, "image") },
	}
}

type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show the history of an image",
		ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not shorten the CREATED BY column"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image ids"},
			&cli.BoolFlag{Name: "human", Aliases: []string{"H"}, Value: true, Usage: "print sizes and dates for people"},
			formatFlag("Go template, 'table TEMPLATE' or json"),
		},
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, 1, "IMAGE"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			img, err := s.Resolve(c.Args().First())
			if err != nil {
				return err
			}
			hist := img.Config.History
			if len(hist) == 0 {
				for range img.ChainIDs {
					hist = append(hist, ocispec.History{})
				}
			}
			sizes := s.LayerSizes(img)
			var rows []historyRow
			li := 0
			for _, h := range hist {
				var size int64
				if !h.EmptyLayer && li < len(sizes) {
					size = sizes[li]
					li++
				}
				r := historyRow{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Size: units.HumanSize(size)}
				if !c.Bool("human") {
					r.Size = fmt.Sprint(size)
				}
				if h.Created != nil {
					r.CreatedSince, r.CreatedAt = units.Ago(*h.Created), h.Created.Format(time.RFC3339)
				}
				if !c.Bool("no-trunc") && len(r.CreatedBy) > 45 {
					r.CreatedBy = r.CreatedBy[:44] + "…"
				}
				rows = append([]historyRow{r}, rows...)
			}
			if len(rows) > 0 {
				rows[0].ID = trunc(img.ID.String(), c.Bool("no-trunc"))
			}
			if c.Bool("quiet") {
				for _, r := range rows {
					fmt.Println(r.ID)
				}
				return nil
			}
			if f := c.String("format"); f != "" {
				return printTable(f, "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
					map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY"}, rows)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment)
			}
			return tw.Flush()
		},
	}
}

func imageMountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount an image read-only and print the mount point (debugging)",
		ArgsUsage: "IMAGE",
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, 1, "IMAGE"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			p, err := s.Mount(c.Args().First())
			if err != nil {
				return err
			}
			fmt.Println(p)
			return nil
		},
	}
}

func imageUnmountCommand() *cli.Command {
	return &cli.Command{
		Name:      "unmount",
		Aliases:   []string{"umount"},
		Usage:     "unmount an image mounted with image mount",
		ArgsUsage: "IMAGE",
		Action: func(c *cli.Context) error {
			if err := imgArgs(c, 1, 1, "IMAGE"); err != nil {
				return err
			}
			s, err := openImageStore(c)
			if err != nil {
				return err
			}
			return s.Unmount(c.Args().First())
		},
	}
}
