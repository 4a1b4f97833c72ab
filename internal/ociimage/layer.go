package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// entry is one path of the layer and where its content comes from.
type entry struct {
	name   string      // in the image, without the leading slash
	mode   fs.FileMode // type and permission bits
	source string      // regular files: the file to read
	link   string      // symlinks: the target
}

// buildLayer returns the uncompressed tar of content: every path once (later sources win), parents before
// children, sorted, owned by root, all with the time mtime.
func buildLayer(content []Source, mtime time.Time) ([]byte, error) {
	entries := map[string]entry{}
	for _, src := range content {
		if !path.IsAbs(src.To) {
			return nil, fmt.Errorf("%s: destination %q is not absolute", src.From, src.To)
		}
		if err := collect(src, entries); err != nil {
			return nil, err
		}
	}
	addParents(entries)
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		if err := writeEntry(tw, entries[name], mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// collect adds src's files to entries: a directory's whole tree below src.To, or one file at src.To.
func collect(src Source, entries map[string]entry) error {
	info, err := os.Stat(src.From)
	if err != nil {
		return err
	}
	dest := strings.TrimPrefix(path.Clean(src.To), "/")
	if !info.IsDir() {
		entries[dest] = entry{name: dest, mode: info.Mode(), source: src.From}
		return nil
	}
	return filepath.WalkDir(src.From, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src.From, p)
		if err != nil {
			return err
		}
		name := path.Join(dest, filepath.ToSlash(rel))
		if name == "" || name == "." {
			return nil // the image's root itself
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{name: name, mode: info.Mode(), source: p}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return fmt.Errorf("%s: unsupported file type %v", p, info.Mode().Type())
		}
		entries[name] = e
		return nil
	})
}

// addParents adds a 0755 directory for every parent that no source provides.
func addParents(entries map[string]entry) {
	for name := range entries {
		for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; ok {
				break
			}
			entries[dir] = entry{name: dir, mode: fs.ModeDir | 0o755}
		}
	}
}

func writeEntry(tw *tar.Writer, e entry, mtime time.Time) error {
	hdr := &tar.Header{
		Name:    e.name,
		Mode:    int64(e.mode.Perm()) | setBits(e.mode),
		ModTime: mtime,
		Format:  tar.FormatPAX,
	}
	switch {
	case e.mode.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
		return tw.WriteHeader(hdr)
	case e.mode&fs.ModeSymlink != 0:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		return tw.WriteHeader(hdr)
	}
	f, err := os.Open(e.source)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// setBits converts Go's setuid, setgid and sticky flags to their tar mode bits.
func setBits(m fs.FileMode) int64 {
	var bits int64
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
