package admin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// Issue 10: the restore mapping and -data-connect-allow of an SVM contain
// its users, so the SVM's own administrators (who may run vserver services
// ndmp modify) cannot change them; a cluster administrator can, and cannot
// make root the default owner or put root in a range.
func TestNDMPTenantFieldsClusterOnly(t *testing.T) {
	e := newNDMPEnv(t)
	ctx := context.Background()
	vs := e.client("vs1/vsadm", "Vsadmin123")
	yes := true
	apiErr(t, vs.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{RestoreAnyOwner: &yes}, nil), http.StatusForbidden, "cluster administrators")
	allow := []string{"0.0.0.0/0"}
	apiErr(t, vs.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{DataConnectAllow: &allow}, nil), http.StatusForbidden, "cluster administrators")

	adm := e.client("admin", adminPW)
	root := uint32(0)
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{RestoreDefaultUID: &root}, nil), http.StatusBadRequest, "root (0)")
	withRoot := "0-999"
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{RestoreUIDs: &withRoot}, nil), http.StatusBadRequest, "contains 0 (root)")
	bad := []string{"not-an-address"}
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{DataConnectAllow: &bad}, nil), http.StatusBadRequest, "data-connect-allow")
	uids, owner := "2000-2999", uint32(3000)
	allow = []string{"192.0.2.0/24"}
	var out admin.NDMPSVMSettings
	if err := adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{RestoreUIDs: &uids, RestoreDefaultUID: &owner, DataConnectAllow: &allow}, &out); err != nil {
		t.Fatal(err)
	}
	if out.RestoreUIDs != uids || out.RestoreDefaultUID != 3000 || out.RestoreDefaultGID != 65534 || len(out.DataConnectAllow) != 1 || out.RestoreAnyOwner {
		t.Fatalf("after modify: %+v", out)
	}
}
