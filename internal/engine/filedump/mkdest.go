package filedump

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// makeDestination creates the directories of rel below the volume's root
// directory root that do not exist yet, as ONTAP does for a restore (and
// ndmpcopy) into a directory that does not exist (issue 17 item 5). Every
// component is opened relative to its parent without following symbolic
// links, so a link planted in the path cannot lead the restore out of the
// volume.
func makeDestination(root, rel string) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("restore destination: %w", err)
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" {
			continue
		}
		if !validName(c) {
			unix.Close(fd)
			return fmt.Errorf("restore destination: bad name %q", c)
		}
		if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return fmt.Errorf("restore destination: create %s: %w", c, err)
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("restore destination: open %s: %w", c, err)
		}
		fd = next
	}
	return unix.Close(fd)
}
