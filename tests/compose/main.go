// eie-compose-check: what README.md promises of docker-compose.yml, checked
// without a Docker engine. The file is loaded by compose-go, the loader that
// Docker Compose itself runs (schema, interpolation, merge keys, references
// between services), so a file it refuses is a file `docker compose up`
// refuses. Then the loaded project is held to the README: the services that
// make up the engine, each program's command, the start order through
// health conditions, ports on the host's loopback only, and every variable a
// program is given is one it reads (the `[env NAME]` of its `--help`), so a
// misspelt name fails here instead of being ignored in a container. Nothing
// is trusted: the file is checked with an env file (as .env, which `docker
// compose` reads) and must take every password from it, refuse to load
// without one, and mount the API's key folder.
//
//	eie-compose-check -file docker-compose.yml -env-file FILE -bin build/bin
//
// Exit 0 when every check passes, 1 with one line per failed check.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
)

var failed int

func fail(format string, args ...any) {
	failed++
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
}

func ok(format string, args ...any) {
	fmt.Printf("ok: "+format+"\n", args...)
}

// Variables every program reads outside its option table (lib/log.c).
var readByAll = []string{"EIE_LOG_LEVEL"}

// Variables libpq reads, so every program that takes DATABASE_URL does.
var readByLibpq = []string{"PGPASSWORD"}

// The engine's services: the programs' containers, built from the repository.
var appServices = []string{"setup", "consumer-hot", "consumer-cold", "api", "simulator"}

// Where the programs find the servers and their topics.
var serverVars = []string{"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "EIE_TOPIC_PREFIX"}

// What each app service runs, as README.md's Programs table and local.sh do.
var wantCommands = map[string][]string{
	"setup": {"sh", "-c", "eie-admin topics && eie-admin roles && PGPASSWORD=\"$EIE_OWNER_PASSWORD\" " +
		"eie-admin migrate --database-url postgresql://eie_owner@postgres:5432/energy_ingestion"},
	"consumer-hot":  {"eie-consumer", "--store", "hot"},
	"consumer-cold": {"eie-consumer", "--store", "cold"},
	"api":           {"eie-api"},
	"simulator":     {"eie-simulate", "--vehicles", "100"},
}

// Ports on the host, as README.md says: the same as deploy/local.sh's.
var wantPublished = map[string]string{"kafka": "9092", "postgres": "55432", "api": "3000"}

func load(ctx context.Context, file, envFile string, env []string) (*types.Project, error) {
	// As `docker compose --env-file envFile` does (cmd/compose
	// ToProjectOptions), less the caller's environment: the checks see the
	// file's defaults, the env file, or env.
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(env),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// A program's settings from its --help: the variables ([env NAME]) and the
// long flags.
type help struct{ env, flags map[string]bool }

var (
	assignRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]*=`)
	envRe    = regexp.MustCompile(`\[env ([A-Z][A-Z0-9_]*)`)
	flagRe   = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
)

func programHelp(bin string, argv []string) (help, error) {
	h := help{env: map[string]bool{}, flags: map[string]bool{}}
	cmd := exec.Command(filepath.Join(bin, argv[0]), append(slices.Clone(argv[1:]), "--help")...)
	out, err := cmd.Output()
	if err != nil {
		return h, fmt.Errorf("%s --help: %v", strings.Join(argv, " "), err)
	}
	for _, m := range envRe.FindAllStringSubmatch(string(out), -1) {
		h.env[m[1]] = true
	}
	for _, m := range flagRe.FindAllStringSubmatch(string(out), -1) {
		h.flags[m[1]] = true
	}
	for _, v := range readByAll {
		h.env[v] = true
	}
	if h.env["DATABASE_URL"] {
		for _, v := range readByLibpq {
			h.env[v] = true
		}
	}
	return h, nil
}

// The programs a command runs, each with its words: ["eie-consumer",
// "--store", "hot"], or one per step of `sh -c "a && b"`. An eie-admin step
// keeps its subcommand, whose --help lists its own settings.
func programs(command []string) [][]string {
	words := command
	if len(command) == 3 && command[0] == "sh" && command[1] == "-c" {
		var out [][]string
		for _, step := range regexp.MustCompile(`&&|;|\|\|`).Split(command[2], -1) {
			f := strings.Fields(step)
			// A step's own variables (NAME=value before the program).
			for len(f) > 0 && assignRe.MatchString(f[0]) {
				f = f[1:]
			}
			if len(f) > 0 {
				out = append(out, f)
			}
		}
		return out
	}
	return [][]string{words}
}

func helpKey(argv []string) []string {
	if argv[0] == "eie-admin" && len(argv) > 1 {
		return argv[:2]
	}
	return argv[:1]
}

func checkApp(p *types.Project, s types.ServiceConfig, root, bin string) {
	if s.Build == nil {
		fail("%s: no build section (README: docker compose up --build)", s.Name)
	} else {
		if ctx, _ := filepath.Abs(s.Build.Context); ctx != root {
			fail("%s: build context %s, expected the repository root %s", s.Name, s.Build.Context, root)
		}
		df := s.Build.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		if _, err := os.Stat(df); err != nil {
			fail("%s: Dockerfile %s: %v", s.Name, s.Build.Dockerfile, err)
		} else {
			ok("%s: built from %s", s.Name, s.Build.Dockerfile)
		}
	}

	want := wantCommands[s.Name]
	if !slices.Equal([]string(s.Command), want) {
		fail("%s: command %q, expected %q", s.Name, []string(s.Command), want)
	}

	// Every variable is read by a program of the command; every flag exists.
	var helps []help
	for _, argv := range programs(s.Command) {
		if !strings.HasPrefix(argv[0], "eie-") {
			fail("%s: runs %q, not one of the engine's programs", s.Name, argv[0])
			continue
		}
		h, err := programHelp(bin, helpKey(argv))
		if err != nil {
			fail("%s: %v", s.Name, err)
			continue
		}
		helps = append(helps, h)
		for _, w := range argv[1:] {
			if name, isFlag := strings.CutPrefix(w, "--"); isFlag {
				name, _, _ = strings.Cut(name, "=")
				if !h.flags[name] {
					fail("%s: %s has no flag --%s (see its --help)", s.Name, argv[0], name)
				}
			}
		}
	}
	for name := range s.Environment {
		if !slices.ContainsFunc(helps, func(h help) bool { return h.env[name] }) {
			fail("%s: variable %s is read by none of %q (their --help lists what they read)",
				s.Name, name, []string(s.Command))
		}
	}
	// Unset, a program would look for its servers on its own container's loopback.
	for _, name := range serverVars {
		if _, set := s.Environment[name]; !set && slices.ContainsFunc(helps, func(h help) bool { return h.env[name] }) {
			fail("%s: %s reads %s, which is not set (a server address would default to the container's own loopback)",
				s.Name, strings.Join(s.Command, " "), name)
		}
	}
	ok("%s: command %q, variables %d, each read by its program", s.Name, []string(s.Command), len(s.Environment))

	// Start order: the servers healthy, then setup done, then the programs.
	needs := map[string]string{"kafka": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy}
	if s.Name != "setup" {
		needs["setup"] = types.ServiceConditionCompletedSuccessfully
	}
	if s.Name == "simulator" {
		needs["api"] = types.ServiceConditionHealthy
	}
	for dep, cond := range needs {
		if got, found := s.DependsOn[dep]; !found {
			fail("%s: does not depend on %s", s.Name, dep)
		} else if got.Condition != cond {
			fail("%s: depends on %s with condition %q, expected %q", s.Name, dep, got.Condition, cond)
		}
	}
	ok("%s: starts after %d services, by their health or completion", s.Name, len(needs))

	if s.Name != "setup" && s.Restart != types.RestartPolicyUnlessStopped {
		fail("%s: restart %q, expected %q", s.Name, s.Restart, types.RestartPolicyUnlessStopped)
	}
	if s.Name == "setup" && s.Restart != types.RestartPolicyNo {
		fail("setup: restart %q, expected \"no\" (a one-shot step)", s.Restart)
	}
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

func service(p *types.Project, name string) (types.ServiceConfig, bool) {
	s, err := p.GetService(name)
	if err != nil {
		fail("no service %q: %v", name, err)
		return s, false
	}
	return s, true
}

func checkHealthcheck(s types.ServiceConfig) {
	if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
		fail("%s: no healthcheck (others wait for service_healthy)", s.Name)
		return
	}
	ok("%s: healthcheck %q", s.Name, []string(s.HealthCheck.Test))
}

// The servers, and how the programs reach them.
func checkServers(p *types.Project, root string) {
	kafka, okK := service(p, "kafka")
	pg, okP := service(p, "postgres")
	api, okA := service(p, "api")
	setup, okS := service(p, "setup")
	if !okK || !okP || !okA || !okS {
		return
	}

	// Same broker version as deploy/kafka/pom.xml: the comment in the file asks for it.
	pom, err := os.ReadFile(filepath.Join(root, "deploy/kafka/pom.xml"))
	if err != nil {
		fail("deploy/kafka/pom.xml: %v", err)
	} else if m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindSubmatch(pom); m == nil {
		fail("deploy/kafka/pom.xml: no <kafka.version>")
	} else if want := "apache/kafka:" + string(m[1]); kafka.Image != want {
		fail("kafka: image %s, expected %s (deploy/kafka/pom.xml's version)", kafka.Image, want)
	} else {
		ok("kafka: image %s, the version of deploy/kafka/pom.xml", kafka.Image)
	}
	checkHealthcheck(kafka)
	if !strings.HasPrefix(pg.Image, "postgres:") {
		fail("postgres: image %q, expected postgres:*", pg.Image)
	}
	checkHealthcheck(pg)
	checkHealthcheck(api)
	if hc := api.HealthCheck; hc != nil && !strings.Contains(strings.Join(hc.Test, " "), ":"+env(api, "PORT")+"/healthz") {
		fail("api: healthcheck %q does not ask /healthz on PORT %s", []string(hc.Test), env(api, "PORT"))
	}

	// The programs' addresses lead to the servers.
	boot := env(setup, "KAFKA_BOOTSTRAP_SERVERS")
	if !strings.Contains(","+env(kafka, "KAFKA_ADVERTISED_LISTENERS")+",", "://"+boot+",") {
		fail("KAFKA_BOOTSTRAP_SERVERS %q is not among kafka's KAFKA_ADVERTISED_LISTENERS %q",
			boot, env(kafka, "KAFKA_ADVERTISED_LISTENERS"))
	} else {
		ok("programs reach Kafka at %s, an advertised listener", boot)
	}
	if !strings.Contains(env(kafka, "KAFKA_ADVERTISED_LISTENERS"), "://127.0.0.1:"+wantPublished["kafka"]) {
		fail("kafka: no listener advertised as 127.0.0.1:%s for tools on the host", wantPublished["kafka"])
	}
	u, err := url.Parse(env(setup, "DATABASE_URL"))
	switch {
	case err != nil:
		fail("DATABASE_URL: %v", err)
	case u.Hostname() != "postgres" || u.Port() != "5432":
		fail("DATABASE_URL %s: expected the postgres service on 5432", u)
	case u.User.Username() != env(pg, "POSTGRES_USER") || strings.TrimPrefix(u.Path, "/") != env(pg, "POSTGRES_DB"):
		fail("DATABASE_URL %s: user and database differ from postgres's POSTGRES_USER %q, POSTGRES_DB %q",
			u, env(pg, "POSTGRES_USER"), env(pg, "POSTGRES_DB"))
	default:
		ok("programs reach PostgreSQL at %s, its user and database", u)
	}
	for _, name := range appServices {
		s, found := p.Services[name]
		if !found {
			continue
		}
		for _, v := range serverVars {
			if _, set := s.Environment[v]; !set || v == "DATABASE_URL" {
				continue
			}
			if env(s, v) != env(setup, v) {
				fail("%s: %s %q differs from setup's %q", name, v, env(s, v), env(setup, v))
			}
		}
		if _, set := s.Environment["DATABASE_URL"]; set {
			checkRoleURL(name, env(s, "DATABASE_URL"), u)
		}
	}
	if env(api, "HOST") != "0.0.0.0" {
		fail("api: HOST %q; inside its container it must listen on 0.0.0.0 to be published", env(api, "HOST"))
	}
}

// Each program connects as its role of least privilege (eie-admin roles):
// the consumers as the writer, the API as the reader, setup as the superuser
// that makes the roles; all to setup's server and database.
var wantRoles = map[string]string{"consumer-hot": "eie_writer", "consumer-cold": "eie_writer", "api": "eie_reader"}

func checkRoleURL(name, raw string, setup *url.URL) {
	if setup == nil {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		fail("%s: DATABASE_URL: %v", name, err)
		return
	}
	if u.Host != setup.Host || u.Path != setup.Path {
		fail("%s: DATABASE_URL %s: not setup's server and database %s%s", name, u, setup.Host, setup.Path)
	}
	want, has := wantRoles[name]
	if !has {
		want = setup.User.Username()
	}
	if u.User.Username() != want {
		fail("%s: DATABASE_URL connects as %q, expected %q", name, u.User.Username(), want)
	} else {
		ok("%s connects to PostgreSQL as %s", name, want)
	}
}

// Published ports: the README's, and on the host's loopback only.
func checkPorts(p *types.Project) {
	published := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				fail("%s: port %s published on %q, not the host's loopback", name, port.Published, port.HostIP)
			}
			published[name] = port.Published
			if name == "api" && fmt.Sprint(port.Target) != env(s, "PORT") {
				fail("api: publishes container port %d, but listens on PORT %s", port.Target, env(s, "PORT"))
			}
		}
	}
	for name, want := range wantPublished {
		if published[name] != want {
			fail("%s: published on host port %q, expected %s (README: the same ports as local.sh)", name, published[name], want)
		} else {
			ok("%s: published on 127.0.0.1:%s", name, want)
		}
	}
}

func main() {
	file := flag.String("file", "docker-compose.yml", "the compose file")
	bin := flag.String("bin", "build/bin", "the folder of the built programs, for their --help")
	envFile := flag.String("env-file", "", "the env file to load it with, as .env (e.g. one deploy/compose-env.sh wrote)")
	flag.Parse()
	ctx := context.Background()
	path, err := filepath.Abs(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	root := filepath.Dir(path)

	if *envFile == "" {
		fmt.Fprintln(os.Stderr, "FAIL: -env-file is required (the .env to check the file with)")
		os.Exit(2)
	}
	dotEnv, err := dotenv.Read(*envFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: %v\n", *envFile, err)
		os.Exit(1)
	}
	p, err := load(ctx, path, *envFile, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: compose-go refuses %s: %v\n", *file, err)
		os.Exit(1)
	}
	ok("compose-go loads %s: project %s, %d services", *file, p.Name, len(p.Services))

	for _, name := range append([]string{"kafka", "postgres"}, appServices...) {
		if s, found := service(p, name); found && slices.Contains(appServices, name) {
			checkApp(p, s, root, *bin)
		}
	}
	checkServers(p, root)
	checkPorts(p)
	checkSecrets(ctx, p, path, dotEnv)

	// The simulator's fleet size follows EIE_SIM_VEHICLES, as with local.sh.
	if p2, err := load(ctx, path, *envFile, []string{"EIE_SIM_VEHICLES=7"}); err != nil {
		fail("with EIE_SIM_VEHICLES=7: %v", err)
	} else if s, found := service(p2, "simulator"); found {
		if want := []string{"eie-simulate", "--vehicles", "7"}; !slices.Equal([]string(s.Command), want) {
			fail("simulator with EIE_SIM_VEHICLES=7: command %q, expected %q", []string(s.Command), want)
		} else {
			ok("simulator: EIE_SIM_VEHICLES=7 gives %q", []string(s.Command))
		}
	}

	if failed > 0 {
		fmt.Fprintf(os.Stderr, "%d checks failed\n", failed)
		os.Exit(1)
	}
	fmt.Println("docker-compose.yml: every check passed")
}
