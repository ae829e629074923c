package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"path"
)

// Archive writes a cpio archive in the kernel's initramfs ("newc") format.
type Archive struct {
	w   *bufio.Writer
	ino uint32
	err error
}

// NewArchive starts an archive on w.
func NewArchive(w io.Writer) *Archive { return &Archive{w: bufio.NewWriter(w)} }

// File mode type bits (from stat(2)).
const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

// Dir adds a directory.
func (a *Archive) Dir(name string, perm uint32) error {
	return a.entry(name, modeDir|perm&0o7777, 0, 0, nil)
}

// File adds a regular file.
func (a *Archive) File(name string, perm uint32, data []byte) error {
	return a.entry(name, modeFile|perm&0o7777, 0, 0, data)
}

// CharDev adds a character device node, such as /dev/console (5, 1), which the kernel opens
// for init's standard streams before devtmpfs exists.
func (a *Archive) CharDev(name string, perm, major, minor uint32) error {
	return a.entry(name, modeChar|perm&0o7777, major, minor, nil)
}

// Close writes the trailer; the archive is complete only after it.
func (a *Archive) Close() error {
	if err := a.entry("TRAILER!!!", 0, 0, 0, nil); err != nil {
		return err
	}
	return a.w.Flush()
}

func (a *Archive) entry(name string, mode, rmajor, rminor uint32, data []byte) error {
	if a.err != nil {
		return a.err
	}
	name = path.Clean(name)
	if name[0] == '/' {
		name = name[1:]
	}
	a.ino++
	nlink := uint32(1)
	if mode&modeDir != 0 {
		nlink = 2
	}
	// magic, then ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
	// namesize check, each eight hex digits.
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		a.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	a.write([]byte(hdr))
	a.write([]byte(name))
	a.write([]byte{0})
	a.pad(len(hdr) + len(name) + 1)
	a.write(data)
	a.pad(len(data))
	return a.err
}

func (a *Archive) write(p []byte) {
	if a.err == nil {
		_, a.err = a.w.Write(p)
	}
}

// pad aligns to four bytes after n bytes.
func (a *Archive) pad(n int) {
	a.write(make([]byte, (4-n%4)%4))
}
