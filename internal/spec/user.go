package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// maxID is the highest uid or gid a user may ask for (the kernel's ids are
// 32-bit, but -1 is reserved and runc keeps to the positive int32 range).
const maxID = 1<<31 - 1

// maxDBSize bounds how much of /etc/passwd or /etc/group is read: the image
// chooses these files, and a huge one must not exhaust memory.
const maxDBSize = 16 << 20

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// execUser is what the process runs as.
type execUser struct {
	uid, gid int
	sgids    []int
	home     string
}

// parsePasswd reads passwd(5) lines. Lines that do not parse (comments,
// blanks, bad numbers) are skipped, as libc skips them.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// parseGroup reads group(5) lines, skipping those that do not parse.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out, err
}

func eachLine(r io.Reader, fn func(fields []string)) error {
	if r == nil {
		return nil
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxDBSize))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// resolveUser turns docker's --user ("name", "uid", "name:group",
// "uid:gid", "" for root) into ids, following the rules runc applies:
// a number is always an id and needs no passwd entry, a name must have one;
// without an explicit group the user's primary group and the groups that
// list the user as a member apply.
func resolveUser(userSpec string, passwd []passwdEntry, groups []groupEntry) (execUser, error) {
	u := execUser{home: "/"}
	userArg, groupArg, _ := strings.Cut(userSpec, ":")
	uidArg, uidErr := strconv.Atoi(userArg)

	var matched *passwdEntry
	for i := range passwd {
		p := &passwd[i]
		if (userArg == "" && p.uid == 0) || (userArg != "" && uidErr == nil && p.uid == uidArg) ||
			(userArg != "" && uidErr != nil && p.name == userArg) {
			matched = p
			break
		}
	}
	switch {
	case matched != nil:
		u.uid, u.gid = matched.uid, matched.gid
		if matched.home != "" {
			u.home = matched.home
		}
	case userArg == "":
	case uidErr != nil:
		return u, errdefs.InvalidArgument(fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg))
	default:
		if err := checkID(uidArg); err != nil {
			return u, err
		}
		u.uid = uidArg
	}

	if groupArg != "" {
		gidArg, gidErr := strconv.Atoi(groupArg)
		g := findGroup(groups, groupArg, gidArg, gidErr == nil)
		switch {
		case g != nil:
			u.gid = g.gid
		case gidErr != nil:
			return u, errdefs.InvalidArgument(fmt.Errorf("unable to find group %s: no matching entries in group file", groupArg))
		default:
			if err := checkID(gidArg); err != nil {
				return u, err
			}
			u.gid = gidArg
		}
		return u, nil
	}
	if matched != nil {
		for _, g := range groups {
			for _, m := range g.members {
				if m == matched.name {
					u.sgids = append(u.sgids, g.gid)
					break
				}
			}
		}
	}
	return u, nil
}

// findGroup finds a group by name, or by gid when arg is numeric (then
// only by gid, as with users).
func findGroup(groups []groupEntry, arg string, gid int, numeric bool) *groupEntry {
	for i := range groups {
		if (numeric && groups[i].gid == gid) || (!numeric && groups[i].name == arg) {
			return &groups[i]
		}
	}
	return nil
}

// additionalGroups resolves --group-add values: group names that must be
// in /etc/group, or numeric gids that need not be.
func additionalGroups(add []string, groups []groupEntry) ([]int, error) {
	var out []int
	for _, a := range add {
		gid, err := strconv.Atoi(a)
		numeric := err == nil
		var g *groupEntry
		for i := range groups {
			if groups[i].name == a || (numeric && groups[i].gid == gid) {
				g = &groups[i]
				break
			}
		}
		switch {
		case g != nil:
			gid = g.gid
		case !numeric:
			return nil, errdefs.InvalidArgument(fmt.Errorf("unable to find group %s: no matching entries in group file", a))
		default:
			if err := checkID(gid); err != nil {
				return nil, err
			}
		}
		out = append(out, gid)
	}
	return out, nil
}

func checkID(id int) error {
	if id < 0 || id > maxID {
		return errdefs.InvalidArgument(errors.New("uids and gids must be in range 0-2147483647"))
	}
	return nil
}
