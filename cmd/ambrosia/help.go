package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

var (
	// errUsage reports a bad command line after its reason was printed:
	// exit status 2.
	errUsage = errors.New("usage")
	// errHelp reports that help was asked for and printed: exit status 0.
	errHelp = errors.New("help")
)

// command is the flag set of one command line (`ambrosia user add`) with
// its usage: every command shows its own usage line, what it does and only
// the flags it reads.
type command struct {
	*flag.FlagSet
	name   string // "user add"
	args   string // what follows the name: "JID [flags]"
	about  string // what it does, a paragraph
	stdout io.Writer
	stderr io.Writer
}

// newCommand returns an empty command; register its flags, then parse.
func newCommand(name, args, about string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet("ambrosia "+name, flag.ContinueOnError)
	// The flag package's own messages are replaced by parse's.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{FlagSet: fs, name: name, args: args, about: about, stdout: stdout, stderr: stderr}
}

// usage prints the usage line, the description and the flags.
func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: ambrosia %s %s\n", c.name, c.args)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	first := true
	c.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nflags:\n")
			first = false
		}
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
			text += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintf(w, "\n        %s\n", text)
	})
}

// parse parses args, accepting flags after positional arguments too
// (`ambrosia user add alice@localhost --data DIR`). -h and --help print
// the usage on standard output and return errHelp; a bad flag is reported,
// with the closest known flag for a mistyped one, and returns errUsage.
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.usage(c.stdout)
				return nil, errHelp
			}
			msg := err.Error()
			if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				name = strings.TrimLeft(name, "-")
				msg = fmt.Sprintf("unknown flag --%s", name)
				var known []string
				c.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
				if s := closest(name, known); s != "" {
					msg += fmt.Sprintf(" (did you mean --%s?)", s)
				}
			}
			fmt.Fprintf(c.stderr, "ambrosia %s: %s\nRun 'ambrosia %s -h' for usage.\n", c.name, msg, c.name)
			return nil, errUsage
		}
		args = c.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// wrongArgs reports positional arguments that do not fit the usage line.
func (c *command) wrongArgs(why string) error {
	fmt.Fprintf(c.stderr, "ambrosia %s: %s\nusage: ambrosia %s %s\n", c.name, why, c.name, c.args)
	return errUsage
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// subcommand picks the subcommand of a command with several (`user`,
// `bench`, `service`, `bridge`): the group's usage on standard output for
// help, on standard error with the reason for a missing or unknown one,
// with the closest known one for a mistyped one.
func subcommand(group string, args, known []string, groupUsage string, stdout, stderr io.Writer) (string, error) {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "ambrosia %s: missing subcommand (%s)\n\n%s", group, strings.Join(known, ", "), groupUsage)
		return "", errUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, groupUsage)
		return "", errHelp
	}
	if slices.Contains(known, args[0]) {
		return args[0], nil
	}
	msg := fmt.Sprintf("unknown subcommand %q", args[0])
	if s := closest(args[0], known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	fmt.Fprintf(stderr, "ambrosia %s: %s\n\n%s", group, msg, groupUsage)
	return "", errUsage
}

// closest returns the word of known nearest to w when it is near enough to
// be a typo (an edit distance of at most 2, or a unique prefix), else "".
func closest(w string, known []string) string {
	w = strings.ToLower(w)
	best, bestD := "", 3
	var prefixed []string
	for _, k := range known {
		if d := editDistance(w, strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
		if len(w) >= 2 && strings.HasPrefix(strings.ToLower(k), w) {
			prefixed = append(prefixed, k)
		}
	}
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	if best != "" && len(best) <= 2 && bestD > 0 {
		return "" // too short for a distance to mean anything
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, with the
// swap of two neighbours counting as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
