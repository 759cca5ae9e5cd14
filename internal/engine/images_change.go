package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// ApplyChanges applies Dockerfile instructions, as `docker import --change`
// and `docker commit --change` take them, to cfg: CMD, ENTRYPOINT, ENV,
// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR.
func ApplyChanges(cfg *image.RunConfig, changes []string) error {
	for _, c := range changes {
		if err := applyChange(cfg, c); err != nil {
			return errdefs.InvalidArgument(err)
		}
	}
	return nil
}

func applyChange(cfg *image.RunConfig, change string) error {
	line := strings.TrimSpace(change)
	var word, rest string
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		word, rest = line[:i], strings.TrimSpace(line[i+1:])
	} else {
		word, rest = line, ""
	}
	cmd := strings.ToUpper(word)
	switch cmd {
	case "CMD", "ENTRYPOINT":
		args, err := commandArgs(rest)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		if cmd == "CMD" {
			cfg.Cmd = args
		} else {
			cfg.Entrypoint = args
		}
	case "ENV":
		pairs, err := keyValues(cmd, rest, true)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(cmd, rest, false)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		words, err := splitWords(rest)
		if err != nil || len(words) == 0 {
			return errors.New("EXPOSE requires at least one argument")
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, w := range words {
			ports, err := parsePorts(w)
			if err != nil {
				return err
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case "VOLUME":
		vols, err := jsonOrWords(rest)
		if err != nil || len(vols) == 0 {
			return errors.New("VOLUME requires at least one argument")
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			if v = strings.TrimSpace(v); v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "USER":
		if rest == "" {
			return errors.New("USER requires exactly one argument")
		}
		cfg.User = rest
	case "WORKDIR":
		if rest == "" {
			return errors.New("WORKDIR requires exactly one argument")
		}
		dir := rest
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
	case "STOPSIGNAL":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return errors.New("STOPSIGNAL requires exactly one argument")
		}
		cfg.StopSignal = rest
	case "ONBUILD":
		if rest == "" {
			return errors.New("ONBUILD requires at least one argument")
		}
		cfg.OnBuild = append(cfg.OnBuild, rest)
	case "":
		return errors.New("empty change")
	default:
		return fmt.Errorf("%s is not a valid change command", word)
	}
	return nil
}

// commandArgs reads CMD's and ENTRYPOINT's argument: a JSON array (exec
// form), or a command line for /bin/sh -c (shell form).
func commandArgs(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		var args []string
		if err := json.Unmarshal([]byte(s), &args); err == nil {
			return args, nil
		}
	}
	if s == "" {
		return nil, errors.New("requires at least one argument")
	}
	return []string{"/bin/sh", "-c", s}, nil
}

func jsonOrWords(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		var out []string
		if err := json.Unmarshal([]byte(s), &out); err == nil {
			return out, nil
		}
	}
	return splitWords(s)
}

// keyValues reads "k=v k2='v 2'" or, where legacy is allowed, "k v w" (the
// key, then the rest as the value).
func keyValues(cmd, s string, legacy bool) ([][2]string, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s requires at least one argument", cmd)
	}
	if !strings.Contains(words[0], "=") {
		if !legacy || len(words) < 2 {
			return nil, fmt.Errorf("%s names must have a value: %s", cmd, s)
		}
		key, value, _ := strings.Cut(strings.TrimSpace(s), " ")
		return [][2]string{{key, strings.TrimSpace(unquote(strings.TrimSpace(value)))}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: syntax error - can't find = in %q. Must be of the form: name=value", cmd, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func unquote(s string) string {
	words, err := splitWords(s)
	if err != nil || len(words) != 1 {
		return s
	}
	return words[0]
}

// splitWords splits s on blanks, honouring single and double quotes and
// backslash escapes as the Dockerfile parser does.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// parsePorts reads an EXPOSE argument: 80, 80/udp, 8000-8002/tcp.
func parsePorts(s string) ([]string, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", spec)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid range specified for containerPort: %s", spec)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// setEnv sets key to value in env (KEY=VALUE entries), replacing it.
func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			out := append([]string(nil), env...)
			out[i] = key + "=" + value
			return out
		}
	}
	return append(env, key+"="+value)
}
