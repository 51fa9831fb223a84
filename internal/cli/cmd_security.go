package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

func (a *app) securityCmd() *cobra.Command {
	return group("security", "Manage security",
		group("login", "Manage login users",
			a.loginCreate(), a.loginShow(), a.loginDelete(), a.loginPassword(), a.loginModify(),
			a.loginLock("lock", true), a.loginLock("unlock", false),
			group("role", "Manage roles", a.roleCreate(), a.roleShow(), a.roleModify(), a.roleDelete())))
}

// userFlags binds -vserver and -user-or-group-name (alias -username).
type userArgs struct{ svm, name, alias string }

func (u *userArgs) flags(c *cobra.Command) {
	c.Flags().StringVar(&u.svm, "vserver", "", "SVM of the user (default: the admin SVM, for cluster users)")
	c.Flags().StringVar(&u.name, "user-or-group-name", "", "user name")
	c.Flags().StringVar(&u.alias, "username", "", "user name (same as -user-or-group-name)")
}

// required returns the user the flags name and checks that there is one
// and that the other parameters given are set.
func (u *userArgs) required(more ...[2]string) (string, error) {
	name, err := u.user()
	if err != nil {
		return "", err
	}
	return name, required(append([][2]string{req("user-or-group-name", name)}, more...)...)
}

func (u *userArgs) user() (string, error) {
	if u.name != "" && u.alias != "" && u.name != u.alias {
		return "", errors.New("-user-or-group-name and -username name different users")
	}
	return first(u.name, u.alias), nil
}

// newPassword returns the -password value or prompts twice for one.
func (a *app) newPassword(cmd *cobra.Command, given string, optional bool) (string, error) {
	if cmd.Flags().Changed("password") || given != "" {
		return given, nil
	}
	if a.env.ReadPassword == nil {
		if optional {
			return "", nil
		}
		return "", errors.New("no terminal to prompt on: give the new password with -password")
	}
	p1, err := a.env.ReadPassword("Enter a new password: ")
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	p2, err := a.env.ReadPassword("Enter it again: ")
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if p1 != p2 {
		return "", errors.New("the passwords do not match")
	}
	return p1, nil
}

func (a *app) loginCreate() *cobra.Command {
	var ua userArgs
	var role, application, method, password string
	c := &cobra.Command{
		Use:   "create [-vserver SVM] -user-or-group-name NAME -role ROLE [-application http] [-authentication-method password] [-password P]",
		Short: "Create a login user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := ua.required(req("role", role))
			if err != nil {
				return err
			}
			switch application {
			case "", "http", "ontapi", "ssh", "console":
			default:
				return fmt.Errorf("%q is not a valid application; use http, ontapi, ssh or console", application)
			}
			if method != "" && method != "password" {
				return fmt.Errorf("authentication method %q is not supported; use password", method)
			}
			pw, err := a.newPassword(cmd, password, true)
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, "/api/security/accounts", nil,
				admin.AccountCreate{SVM: ua.svm, Name: name, Role: role, Password: pw}, nil)
		},
	}
	ua.flags(c)
	f := c.Flags()
	f.StringVar(&role, "role", "", "role name")
	f.StringVar(&application, "application", "http", "application (all use the admin API)")
	f.StringVar(&method, "authentication-method", "password", "authentication method (password)")
	f.StringVar(&method, "authmethod", "password", "same as -authentication-method")
	f.StringVar(&password, "password", "", "login password (prompted for on a terminal when omitted)")
	return c
}

func (a *app) loginDelete() *cobra.Command {
	var ua userArgs
	c := &cobra.Command{
		Use:   "delete [-vserver SVM] -user-or-group-name NAME",
		Short: "Delete a login user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := ua.required()
			if err != nil {
				return err
			}
			p, err := a.ownedPath(cmd, "/api/security/accounts", ua.svm, name)
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodDelete, p, nil, nil, nil)
		},
	}
	ua.flags(c)
	return c
}

// login returns the SVM (empty for a cluster user) and the name of the
// user the command line logs in as; SVM users log in as SVM/name.
func (a *app) login() (string, string) {
	u := first(a.user, a.env.Getenv("TAPESTRY_USER"), "admin")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		return u[:i], u[i+1:]
	}
	return "", u
}

// ownedPath is the API path base/OWNER/name of an account or role, OWNER
// being svm or, when it is empty, the one ownerName gives.
func (a *app) ownedPath(cmd *cobra.Command, base, svm, name string) (string, error) {
	c, err := a.api()
	if err != nil {
		return "", err
	}
	owner, err := a.ownerName(cmd, c, svm)
	if err != nil {
		return "", err
	}
	return base + "/" + url.PathEscape(owner) + "/" + url.PathEscape(name), nil
}

// ownerName returns svm, or the admin SVM's name when svm is empty.
func (a *app) ownerName(cmd *cobra.Command, c *admin.Client, svm string) (string, error) {
	if svm != "" {
		return svm, nil
	}
	if lsvm, _ := a.login(); lsvm != "" {
		return lsvm, nil
	}
	var info admin.ClusterInfo
	if err := c.Do(cmd.Context(), http.MethodGet, "/api/cluster", nil, nil, &info); err != nil {
		// A user without cluster show rights still has a name to use.
		return "", fmt.Errorf("give -vserver: %w", err)
	}
	return info.Name, nil
}

func (a *app) loginPassword() *cobra.Command {
	var ua userArgs
	var password string
	c := &cobra.Command{
		Use:   "password [-vserver SVM] [-user-or-group-name NAME] [-password P]",
		Short: "Change a login password (your own when no user is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := ua.user()
			if err != nil {
				return err
			}
			if name == "" {
				lsvm, lname := a.login()
				name = lname
				if ua.svm == "" {
					ua.svm = lsvm
				}
			}
			p, err := a.ownedPath(cmd, "/api/security/accounts", ua.svm, name)
			if err != nil {
				return err
			}
			pw, err := a.newPassword(cmd, password, false)
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodPatch, p, nil, admin.AccountModify{Password: &pw}, nil)
		},
	}
	ua.flags(c)
	c.Flags().StringVar(&password, "password", "", "new password (prompted for on a terminal when omitted)")
	return c
}

func (a *app) loginModify() *cobra.Command {
	var ua userArgs
	var role string
	c := &cobra.Command{
		Use:   "modify [-vserver SVM] -user-or-group-name NAME -role ROLE",
		Short: "Give a login user another role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := ua.required(req("role", role))
			if err != nil {
				return err
			}
			return a.patchAccount(cmd, ua.svm, name, admin.AccountModify{Role: &role})
		},
	}
	ua.flags(c)
	c.Flags().StringVar(&role, "role", "", "new role")
	return c
}

func (a *app) loginLock(verb string, lock bool) *cobra.Command {
	var ua userArgs
	c := &cobra.Command{
		Use:   verb + " [-vserver SVM] -user-or-group-name NAME",
		Short: "Lock or unlock a login user (a locked user can neither log in nor use NDMP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := ua.required()
			if err != nil {
				return err
			}
			l := lock
			return a.patchAccount(cmd, ua.svm, name, admin.AccountModify{Locked: &l})
		},
	}
	ua.flags(c)
	return c
}

func (a *app) patchAccount(cmd *cobra.Command, svm, name string, in admin.AccountModify) error {
	p, err := a.ownedPath(cmd, "/api/security/accounts", svm, name)
	if err != nil {
		return err
	}
	return a.call(cmd, http.MethodPatch, p, nil, in, nil)
}

func (a *app) loginShow() *cobra.Command {
	var o ShowOptions
	var ua userArgs
	c := &cobra.Command{
		Use:   "show [-vserver SVM] [-user-or-group-name NAME]",
		Short: "Display login users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := ua.user()
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "owner.name", ua.svm)
			setIf(q, "name", name)
			return printList(a, cmd, "/api/security/accounts", q, o, loginTable)
		},
	}
	ua.flags(c)
	showFlags(c, &o)
	return c
}

// loginTable is the table of security login show.
func loginTable(users []admin.User) Table {
	t := Table{
		Columns: []Column{
			{"vserver", "Vserver", "Vserver"},
			{"user-or-group-name", "User/Group Name", "User Name or Group Name"},
			{"application", "Application", "Application"},
			{"authentication-method", "Authentication Method", "Authentication Method"},
			{"role", "Role Name", "Role Name"},
			{"is-account-locked", "Acct Locked", "Account Locked"},
			{"has-password", "Password Set", "Password Set"},
			{"password-change-time", "Password Changed", "Password Change Time"},
			{"create-time", "Create Time", "Create Time"},
		},
		Keys:    []string{"vserver", "user-or-group-name"},
		Default: []string{"vserver", "user-or-group-name", "application", "authentication-method", "role", "is-account-locked"},
	}
	for _, u := range users {
		t.Rows = append(t.Rows, map[string]string{
			"vserver": u.SVM, "user-or-group-name": u.Name, "application": "http", "authentication-method": "password",
			"role": u.Role, "is-account-locked": yesNo(u.Locked), "has-password": boolText(u.HasPassword),
			"password-change-time": timeText(u.PasswordChangedAt), "create-time": timeText(u.CreatedAt),
		})
	}
	return t
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (a *app) roleCreate() *cobra.Command {
	var in admin.RoleCreate
	c := &cobra.Command{
		Use:   "create [-vserver SVM] -role NAME -cmddirname DIR [-access all|readonly|none]",
		Short: "Add a command directory to a custom role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("role", in.Name), req("cmddirname", in.CmdDir)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, "/api/security/roles", nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&in.SVM, "vserver", "", "SVM of the role (default: the admin SVM)")
	f.StringVar(&in.Name, "role", "", "role name")
	f.StringVar(&in.CmdDir, "cmddirname", "", "command directory, such as \"vserver services ndmp\" or DEFAULT")
	f.StringVar(&in.Access, "access", "all", "access level: all, readonly or none")
	return c
}

func (a *app) roleModify() *cobra.Command {
	var svm, name string
	var in admin.RoleModify
	c := &cobra.Command{
		Use:   "modify [-vserver SVM] -role NAME -cmddirname DIR -access all|readonly|none",
		Short: "Change the access level of a command directory of a custom role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("role", name), req("cmddirname", in.CmdDir), req("access", in.Access)); err != nil {
				return err
			}
			p, err := a.ownedPath(cmd, "/api/security/roles", svm, name)
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodPatch, p, nil, in, nil)
		},
	}
	c.Flags().StringVar(&svm, "vserver", "", "SVM of the role (default: your own)")
	c.Flags().StringVar(&name, "role", "", "role name")
	c.Flags().StringVar(&in.CmdDir, "cmddirname", "", "command directory")
	c.Flags().StringVar(&in.Access, "access", "", "new access level: all, readonly or none")
	return c
}

func (a *app) roleDelete() *cobra.Command {
	var svm, name, dir string
	c := &cobra.Command{
		Use:   "delete [-vserver SVM] -role NAME [-cmddirname DIR]",
		Short: "Delete a command directory of a custom role, or the whole role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("role", name)); err != nil {
				return err
			}
			p, err := a.ownedPath(cmd, "/api/security/roles", svm, name)
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "cmddirname", dir)
			return a.call(cmd, http.MethodDelete, p, q, nil, nil)
		},
	}
	c.Flags().StringVar(&svm, "vserver", "", "SVM of the role (default: the admin SVM)")
	c.Flags().StringVar(&name, "role", "", "role name")
	c.Flags().StringVar(&dir, "cmddirname", "", "command directory to remove (default: the whole role)")
	return c
}

func (a *app) roleShow() *cobra.Command {
	return showCmd(a, showSpec[admin.Role]{
		use: "show [-vserver SVM] [-role NAME]", short: "Display roles, one line per command directory", path: "/api/security/roles",
		filters: []filter{{"vserver", "owner.name", "show only roles usable in this SVM"}, {"role", "name", "show only this role"}},
		table: func(roles []admin.Role) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver"},
					{"role", "Role Name", "Role Name"},
					{"cmddirname", "Command/Directory", "Command / Directory"},
					{"access", "Access Level", "Access Level"},
					{"builtin", "Built-in", "Built-in Role"},
				},
				Keys:    []string{"vserver", "role", "cmddirname"},
				Default: []string{"vserver", "role", "cmddirname", "access"},
			}
			for _, r := range roles {
				for _, e := range r.Entries {
					t.Rows = append(t.Rows, map[string]string{
						"vserver": r.SVM, "role": r.Name, "cmddirname": e.CmdDir, "access": string(e.Access),
						"builtin": boolText(r.Builtin),
					})
				}
			}
			return t
		},
	})
}
