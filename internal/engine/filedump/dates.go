package filedump

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// DatesPrefix is the catalog key prefix under which the engine keeps dump
// dates (the increment chains), catalog.Prefix("dump", "dates"); inode maps
// are under InodeMapPrefix.
const DatesPrefix = "dump/dates/"

// DumpRecord is one recorded backup of a path at a level.
type DumpRecord struct {
	Level int       `json:"level"`
	Date  time.Time `json:"date"`
	// TypeGeneration is the volume's type generation at backup time (D15).
	TypeGeneration uint64 `json:"type-generation"`
}

// DatesKey returns the catalog key of the dump dates of a backup path and
// DMP_NAME ("-" when there is none): Key("dump", "dates", path, dmpName).
func DatesKey(path, dmpName string) string {
	if dmpName == "" {
		dmpName = "-"
	}
	return catalog.Key("dump", "dates", path, dmpName)
}

// loadDates returns the records of key, at most one per level.
func loadDates(ctx context.Context, st catalog.Store, key string) ([]DumpRecord, error) {
	var recs []DumpRecord
	err := st.View(ctx, func(tx catalog.Tx) error {
		r, err := catalog.GetJSON[[]DumpRecord](tx, key)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil
		}
		recs = r
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read dump dates: %w", err)
	}
	return recs, nil
}

// FindBase returns the base of a level n backup among recs: the most recent
// record at a lower level (D5). ok is false when there is none.
func FindBase(recs []DumpRecord, level int) (base DumpRecord, ok bool) {
	for _, r := range recs {
		if r.Level < level && (!ok || r.Date.After(base.Date)) {
			base, ok = r, true
		}
	}
	return base, ok
}

// recordDump stores a backup at level, replacing the earlier record of that
// level (one record per level, as in Linux dump's dumpdates file).
func recordDump(ctx context.Context, st catalog.Store, key string, rec DumpRecord) error {
	return st.Update(ctx, func(tx catalog.Tx) error {
		recs, err := catalog.GetJSON[[]DumpRecord](tx, key)
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		out := recs[:0]
		for _, r := range recs {
			if r.Level != rec.Level {
				out = append(out, r)
			}
		}
		out = append(out, rec)
		sort.Slice(out, func(i, j int) bool { return out[i].Level < out[j].Level })
		return catalog.PutJSON(tx, key, out)
	})
}

// DumpDateToken builds a DUMP_DATE value: the level in the high 32 bits and
// the dump time in seconds in the low 32 bits.
func DumpDateToken(level int, t time.Time) string {
	return strconv.FormatUint(uint64(uint32(level))<<32|uint64(uint32(t.Unix())), 10)
}

// ParseDumpDateToken splits a BASE_DATE value made from a DUMP_DATE token.
func ParseDumpDateToken(s string) (level int, t time.Time, err error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("BASE_DATE %q is not a DUMP_DATE value", s)
	}
	level = int(v >> 32)
	if level > 31 {
		return 0, time.Time{}, fmt.Errorf("BASE_DATE %q: level %d is above 31", s, level)
	}
	return level, time.Unix(int64(uint32(v)), 0), nil
}
