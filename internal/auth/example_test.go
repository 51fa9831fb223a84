package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// The first start creates admin; an SVM user gets an NDMP password; a user
// without a login password gets ONTAP's message.
func Example() {
	dir, err := os.MkdirTemp("", "tapestry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := catalog.OpenBolt(filepath.Join(dir, "catalog.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	a := auth.New(store, auth.Options{AdminSVM: "cluster1"})
	if _, err := a.Bootstrap(ctx, "Initial123"); err != nil {
		log.Fatal(err)
	}
	if _, err := a.CreateUser(ctx, auth.UserSpec{SVM: "vs1", Name: "user1", Role: auth.RoleVsadminBackup, Password: "Login1234"}); err != nil {
		log.Fatal(err)
	}
	if _, err := a.CreateUser(ctx, auth.UserSpec{SVM: "vs1", Name: "user2", Role: auth.RoleVsadmin}); err != nil {
		log.Fatal(err)
	}
	pw, err := a.GenerateNDMPPassword(ctx, "vs1", "user1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(pw), a.CanUseNDMP(ctx, "vs1", "user1", auth.LIFData))
	err = a.Authorize(ctx, "vs1", "user1", "volume delete", true)
	fmt.Println(errors.Is(err, auth.ErrDenied))
	_, err = a.GenerateNDMPPassword(ctx, "vs1", "user2")
	fmt.Println("Error:", auth.Message(err))
	// Output:
	// 16 <nil>
	// true
	// Error: show failed: Cannot get password for user 'user2'
}
