// compose-validator loads compose files with compose-go, the library Docker Compose v2 itself parses
// with: interpolation (including ${VAR:?message}), the compose-spec JSON schema, merging, and the
// consistency checks (unknown services in depends_on, undeclared volumes, networks and secrets). It
// needs no Docker engine and no network. On success it prints the resolved project as JSON, so tests
// can make assertions on the model Compose would run, not on the raw YAML.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var files, envFiles fileList
	flag.Var(&files, "f", "compose file (repeatable)")
	flag.Var(&envFiles, "env-file", "env file for interpolation (repeatable); the default .env is never read")
	workdir := flag.String("project-directory", ".", "project directory (relative paths resolve from here)")
	name := flag.String("project-name", "rampart", "project name")
	flag.Parse()
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-validator -f docker-compose.yml [-env-file .env.example] [-project-directory .]")
		os.Exit(2)
	}

	// Same precedence as `docker compose`: the process environment wins over env files. Only the env
	// files named here are read, never an implicit .env, so a developer's own .env cannot mask a mistake.
	fns := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(*workdir), cli.WithName(*name), cli.WithOsEnv}
	if len(envFiles) > 0 {
		fns = append(fns, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	fns = append(fns, cli.WithProfiles([]string{"*"}))
	options, err := cli.NewProjectOptions(files, fns...)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "invalid: %v\n", err)
	os.Exit(1)
}
