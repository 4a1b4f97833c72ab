package standalone

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
)

// fileStamp is what polling compares to tell that a file changed.
type fileStamp struct {
	size, mtime int64
	// ino tells a file renamed into place (a new inode: written whole
	// elsewhere first) from one written in place.
	ino uint64
	// err is why the file cannot be looked at (a dangling symlink, a
	// symlink loop); reading it says so once, and its last good objects stay.
	err string
}

// errEmpty is a directory without a single manifest file: kept as if it
// were unreadable, since it is more often a mount not there (yet) than a
// wish to remove every Service.
var errEmpty = errors.New("no manifest file in the directory")

// scan returns the stamps of the manifest files under dir. A file that
// cannot be stat'ed gets a stamp with its error instead of failing the whole
// scan (one dangling symlink must not freeze every other file). The files of
// a subdirectory that cannot be read keep their stamps from last (they are
// unknown, not gone); such subdirectories are returned in unreadable.
func scan(dir string, last map[string]fileStamp) (map[string]fileStamp, map[string]error, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, err
	}
	paths, unreadable, err := manifest.ListFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]fileStamp, len(paths))
	for _, p := range paths {
		out[p] = stampOf(p)
	}
	for sub := range unreadable {
		prefix := sub + string(os.PathSeparator)
		for p, st := range last {
			if strings.HasPrefix(p, prefix) {
				out[p] = st
			}
		}
	}
	if len(out) == 0 && len(unreadable) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", dir, errEmpty)
	}
	return out, unreadable, nil
}

func stampOf(p string) fileStamp {
	info, err := os.Stat(p)
	if err != nil {
		return fileStamp{err: err.Error()}
	}
	st := fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// settle returns the stamps to apply now: the applied ones, updated with
// every file that is done changing. A file written in place (`cat > f`) may
// be caught half written, so its change waits until its stamp is the same
// at two polls in a row; a file renamed into place (a new inode) was
// written whole and counts at once, as does everything at the first scan. A
// file gone at two polls in a row is gone.
func settle(applied, previous, current map[string]fileStamp, first bool) map[string]fileStamp {
	if first {
		return current
	}
	out := maps.Clone(applied)
	for p, st := range current {
		old, had := applied[p]
		if had && old == st {
			continue
		}
		prev, seen := previous[p]
		renamed := had && st.err == "" && old.err == "" && old.ino != st.ino
		if (seen && prev == st) || renamed {
			out[p] = st
		}
	}
	for p := range applied {
		_, now := current[p]
		_, before := previous[p]
		if !now && !before {
			delete(out, p)
		}
	}
	return out
}

// logProblem logs an unreadable or empty directory when it becomes so, not
// at every poll, and once when it is fine again.
func (s *Source) logProblem(last *string, err error) {
	now := ""
	if err != nil {
		now = err.Error()
	}
	switch {
	case now == *last:
	case errors.Is(err, errEmpty):
		s.cfg.Log.Warn("manifest directory holds no manifest file; keeping the current Services (a mount not there yet?); "+
			"to remove every Service, leave one empty manifest file", zap.String("dir", s.cfg.Dir))
	case err != nil:
		s.cfg.Log.Warn("manifest directory unreadable; keeping the current Services", zap.String("dir", s.cfg.Dir), zap.Error(err))
	default:
		s.cfg.Log.Info("manifest directory readable again", zap.String("dir", s.cfg.Dir))
	}
	*last = now
}

// logSubdirs logs subdirectories that became unreadable (their files keep
// their objects) or readable again.
func (s *Source) logSubdirs(before, now map[string]error) {
	for p, err := range now {
		if _, ok := before[p]; !ok {
			s.cfg.Log.Warn("manifest subdirectory unreadable; keeping the objects of its files", zap.String("dir", p), zap.Error(err))
		}
	}
	for p := range before {
		if _, ok := now[p]; !ok {
			s.cfg.Log.Info("manifest subdirectory readable again", zap.String("dir", p))
		}
	}
}
