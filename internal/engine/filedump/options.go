package filedump

import (
	"context"
	"fmt"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/options"
)

// offsetMapOn reads the node option ndmpd.offset_map.enable from the node's
// catalog (issue 12 item 7): a backup writes the offset map only with it on,
// and a restore does enhanced DAR only with it on. Without a catalog
// (tapestry dump and restore of a plain directory) it is on.
func offsetMapOn(ctx context.Context, store catalog.Store) (bool, error) {
	if store == nil {
		return true, nil
	}
	on, err := options.On(ctx, store, options.OffsetMap)
	if err != nil {
		return false, fmt.Errorf("dump: %w", err)
	}
	return on, nil
}
