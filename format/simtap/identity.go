package simtap

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// checkEvery is how many bytes a writer may write between two checks that
// the open image is still the file at the cartridge's path (one
// write-behind chunk): two stat calls per 8 MiB.
const checkEvery = writeBehindChunk

// checkMedium verifies that the open image is still the file at c.path:
// not unlinked (no links left) and not replaced by another file (the path
// names another inode, or nothing). A failed check is kept in c.gone and
// returned from then on (ErrMediumGone); a stat error that says nothing
// about the image is returned but not kept.
func (c *Cartridge) checkMedium() error {
	if c.gone != nil {
		return c.gone
	}
	var fd, ps unix.Stat_t
	if err := unix.Fstat(int(c.f.Fd()), &fd); err != nil {
		return fmt.Errorf("simtap: check image %s: %w", c.path, err)
	}
	if fd.Nlink == 0 {
		c.gone = fmt.Errorf("%w: %s was removed while open", ErrMediumGone, c.path)
		return c.gone
	}
	err := unix.Stat(c.path, &ps)
	switch {
	case errors.Is(err, unix.ENOENT):
		c.gone = fmt.Errorf("%w: %s was removed while open", ErrMediumGone, c.path)
		return c.gone
	case err != nil:
		return fmt.Errorf("simtap: check image %s: %w", c.path, err)
	case ps.Dev != fd.Dev || ps.Ino != fd.Ino:
		c.gone = fmt.Errorf("%w: %s was replaced by another file while open", ErrMediumGone, c.path)
		return c.gone
	}
	c.checked = c.end
	return nil
}

// checkMediumAt checks the image before a write at offset off when the
// writer went checkEvery bytes past the last check, or went back before
// it (the tape was rewound and is written again).
func (c *Cartridge) checkMediumAt(off int64) error {
	if c.gone != nil {
		return c.gone
	}
	if off >= c.checked && off-c.checked < checkEvery {
		return nil
	}
	if err := c.checkMedium(); err != nil {
		return err
	}
	c.checked = off
	return nil
}
