package config

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Rewrite replaces the config file at path with text safely: text is
// written to a temporary file beside it (same mode and, when permitted,
// owner) and synced; check, when not nil, is given that file's path and
// its error leaves path unchanged; then old (the content being replaced)
// is written to path.bak, the temporary file is renamed over path and the
// directory synced, so path is always either the old or the new file.
// `hbd add-host -write` and the admin config editor use it.
func Rewrite(path string, old, text []byte, check func(tmp string) error) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	// The .yaml suffix keeps the file a config file for Load.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := writeSynced(tmp, text, st); err != nil {
		return err
	}
	if check != nil {
		if err := check(tmp.Name()); err != nil {
			return err
		}
	}
	bak, err := os.OpenFile(path+".bak", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return fmt.Errorf("keep a backup: %w", err)
	}
	if err := writeSynced(bak, old, st); err != nil {
		return fmt.Errorf("keep a backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// writeSynced writes b to f with like's mode and (when permitted) owner,
// syncs and closes it.
func writeSynced(f *os.File, b []byte, like os.FileInfo) error {
	defer f.Close()
	if err := f.Chmod(like.Mode().Perm()); err != nil {
		return err
	}
	if sys, ok := like.Sys().(*syscall.Stat_t); ok {
		f.Chown(int(sys.Uid), int(sys.Gid)) // only root may; others keep their own
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
