package oidctest

// Defaults of EntraToken: a tenant, an application (client) id and the object
// id of its service principal.
const (
	EntraTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	EntraAppID    = "5d3ca3b8-0a8a-4d5c-9b8e-3b0f4e2d1c7a"
	EntraObjectID = "9e1b2c3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e"
)

// EntraToken describes an Entra ID access token of an application (a service
// principal, a managed identity, a workload identity).
type EntraToken struct {
	Tenant   string // tid; EntraTenant
	AppID    string // the client's application id: azp in v2.0, appid in v1.0; EntraAppID
	ObjectID string // oid, and sub of an application's own token; EntraObjectID
	Version  string // ver; "2.0" (azp), or "1.0" (appid)
	Audience string // aud; the resource the token was requested for, none when ""
}

// Entra mints a token with the claims Entra ID puts in an application's
// access token
// (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
// tid, oid, sub, idtyp app, ver, and azp (v2.0) or appid (v1.0). iss is the
// issuer's URL, where Entra's is https://login.microsoftonline.com/TENANT/v2.0.
func (i *Issuer) Entra(j EntraToken, opts ...Option) string {
	def(&j.Tenant, EntraTenant)
	def(&j.AppID, EntraAppID)
	def(&j.ObjectID, EntraObjectID)
	def(&j.Version, "2.0")
	c := map[string]any{
		"tid":   j.Tenant,
		"oid":   j.ObjectID,
		"sub":   j.ObjectID,
		"idtyp": "app",
		"ver":   j.Version,
		"rh":    "0.AXEAv4j5cvGGr0GRqy180BHbR1-test.",
		"uti":   "5xUkRk2fUkC3mSx0-test",
	}
	if j.Version == "1.0" {
		c["appid"], c["appidacr"] = j.AppID, "2"
	} else {
		c["azp"], c["azpacr"] = j.AppID, "2"
	}
	return i.Mint(c, withDefaultAudience(j.Audience, opts)...)
}
