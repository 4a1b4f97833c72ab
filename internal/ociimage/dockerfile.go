package ociimage

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FromDockerfile returns the image that the last stage of a Dockerfile describes, so that an image packed here and
// one built with `docker build` hold the same files and start the same way. That stage must start FROM scratch
// and may use only COPY (one source each), ENTRYPOINT and CMD (exec form), ENV, LABEL and WORKDIR: nothing that
// needs a container to run. A COPY --from=NAME reads from stages[NAME], the directory that holds, at the same
// paths, what that earlier stage made; a plain COPY reads from buildContext. Ref and Created are left to the
// caller.
func FromDockerfile(dockerfile string, stages map[string]string, buildContext string) (Image, error) {
	instructions, err := lastStage(dockerfile)
	if err != nil {
		return Image{}, err
	}
	var img Image
	for _, in := range instructions {
		if err := apply(&img, in, stages, buildContext); err != nil {
			return Image{}, fmt.Errorf("%s:%d: %s: %w", dockerfile, in.line, in.keyword, err)
		}
	}
	return img, nil
}

// instruction is one logical line of a Dockerfile.
type instruction struct {
	line    int
	keyword string // upper case
	args    string
}

// lastStage returns the instructions after the Dockerfile's last FROM, which must be FROM scratch.
func lastStage(dockerfile string) ([]instruction, error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		stage   []instruction
		from    string
		pending string
		start   int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if pending == "" && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if pending == "" {
			start = n
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			pending += cont + " "
			continue
		}
		keyword, args, _ := strings.Cut(pending+text, " ")
		pending = ""
		in := instruction{line: start, keyword: strings.ToUpper(keyword), args: strings.TrimSpace(args)}
		if in.keyword == "FROM" {
			from, stage = in.args, nil
			continue
		}
		stage = append(stage, in)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if image, _, _ := strings.Cut(from, " "); image != "scratch" {
		return nil, fmt.Errorf("%s: the last stage is FROM %q; only FROM scratch can be packed without running a container", dockerfile, from)
	}
	return stage, nil
}

func apply(img *Image, in instruction, stages map[string]string, buildContext string) error {
	switch in.keyword {
	case "COPY":
		src, err := copySource(in.args, stages, buildContext)
		if err != nil {
			return err
		}
		img.Content = append(img.Content, src)
	case "ENTRYPOINT":
		return json.Unmarshal([]byte(in.args), &img.Entrypoint)
	case "CMD":
		return json.Unmarshal([]byte(in.args), &img.Cmd)
	case "ENV":
		pairs, err := keyValues(in.args)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			img.Env = append(img.Env, kv[0]+"="+kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(in.args)
		if err != nil {
			return err
		}
		if img.Labels == nil {
			img.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			img.Labels[kv[0]] = kv[1]
		}
	case "WORKDIR":
		img.WorkingDir = in.args
	default:
		return fmt.Errorf("not supported in the packed stage")
	}
	return nil
}

// copySource turns `[--from=NAME] SRC DEST` into a Source.
func copySource(args string, stages map[string]string, buildContext string) (Source, error) {
	fields := strings.Fields(args)
	base := buildContext
	if len(fields) > 0 && strings.HasPrefix(fields[0], "--from=") {
		name := strings.TrimPrefix(fields[0], "--from=")
		dir, ok := stages[name]
		if !ok {
			return Source{}, fmt.Errorf("no directory given for stage %q", name)
		}
		base, fields = dir, fields[1:]
	}
	if len(fields) != 2 || strings.HasPrefix(fields[0], "--") {
		return Source{}, fmt.Errorf("want [--from=STAGE] SRC DEST, got %q", args)
	}
	return Source{From: filepath.Join(base, fields[0]), To: fields[1]}, nil
}

// keyValues parses ENV and LABEL arguments: key=value pairs, values optionally double-quoted.
func keyValues(args string) ([][2]string, error) {
	var out [][2]string
	for rest := strings.TrimSpace(args); rest != ""; rest = strings.TrimSpace(rest) {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("want key=value, got %q", rest)
		}
		var value string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", rest)
			}
			value, rest = after[1:end+1], after[end+2:]
		} else {
			value, rest, _ = strings.Cut(after, " ")
		}
		out = append(out, [2]string{key, value})
	}
	return out, nil
}
