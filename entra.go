package berth

import (
	"fmt"
	"slices"
	"strings"
)

// PresetEntra is the preset of workloads that sign in to Microsoft Entra ID
// (service principals, managed identities, workload identities): their Entra
// tokens are matched by tenant and by the application or object id, as Azure
// Container Registry's token exchange accepts them.
const PresetEntra = "entra"

// NullClientID is the user name that says the password is a refresh token,
// as Azure Container Registry's docker login convention has it: docker login
// HOST -u 00000000-0000-0000-0000-000000000000 -p REFRESH_TOKEN.
const NullClientID = "00000000-0000-0000-0000-000000000000"

// RefreshTokenUser reports whether user, sent with a password, says the
// password is a refresh token: IdentityTokenUser (docker's credential
// helpers' name) or NullClientID (ACR's).
func RefreshTokenUser(user string) bool { return user == IdentityTokenUser || user == NullClientID }

// EntraIssuer is the issuer of Entra ID's v2.0 tokens for tenant; v1.0
// tokens name https://sts.windows.net/TENANT/ instead.
func EntraIssuer(tenant string) string {
	return "https://login.microsoftonline.com/" + tenant + "/v2.0"
}

// entraIdentityClaims are the claims an Entra token names its workload by:
// the object id of the service principal or managed identity (oid), the
// application (client) id of a v1.0 token (appid) or of a v2.0 token (azp),
// and the subject, which for an application's own token is its object id.
const entraIdentityClaims = "oid|appid|azp|sub"

// expandEntra returns the issuer, subject pattern and claim conditions of the
// entra preset, whose spec is TENANT/APP_OR_OBJECT_ID, both GUIDs (Entra
// writes its tokens' tid, oid, appid and azp in lower case): any subject of
// the tenant's issuer (EntraIssuer, unless issuer is given) whose tid is
// TENANT and whose oid, appid, azp or sub is the id.
func expandEntra(spec, issuer string) (string, string, map[string]string, error) {
	tenantArg, idArg, ok := strings.Cut(spec, "/")
	tenant, terr := parseUUID(tenantArg)
	id, ierr := parseUUID(idArg)
	if !ok || terr != nil || ierr != nil {
		return "", "", nil, Errorf(CodeInvalid, "the entra preset %q does not have the form TENANT/APP_OR_OBJECT_ID, two GUIDs", Truncate(spec, 120)).
			WithHint("the tenant id (az account show --query tenantId; a domain name is not what tokens carry), then the application (client) id or the object id of the service principal or managed identity: --entra 72f988bf-86f1-41af-91ab-2d7cd011db47/5d3ca3b8-0a8a-4d5c-9b8e-3b0f4e2d1c7a")
	}
	if issuer == "" {
		issuer = EntraIssuer(tenant)
	}
	return issuer, "*", map[string]string{"tid": tenant, entraIdentityClaims: id}, nil
}

// claimAlternatives returns the claim names of a condition's key: one name,
// or several joined by '|' ("oid|appid|azp|sub"), any of which may satisfy it.
func claimAlternatives(key string) []string { return strings.Split(key, "|") }

// validateClaimKey returns invalid unless key is a claim name, or names joined
// by '|', none of them one berth checks itself; sub may be one of several.
func validateClaimKey(key, pattern string) error {
	names := claimAlternatives(key)
	for _, n := range names {
		switch {
		case n == "" || strings.ContainsAny(n, "= \t\n"):
			return Errorf(CodeInvalid, "claim condition %q has no valid claim name", Truncate(key+"="+pattern, 80)).
				WithHint("write --claim NAME=PATTERN, such as --claim ref_protected=true, or NAME|NAME=PATTERN for either claim")
		case n == "sub" && len(names) > 1:
		case slices.Contains(reservedClaims, n):
			return Errorf(CodeInvalid, "the claim %q is checked by berth itself and cannot be a condition", n).
				WithHint("use --issuer for iss, --subject for sub and --audience for aud")
		}
	}
	return nil
}

// matchClaim says why a does not satisfy the condition key=pattern, or ""
// when it does: when key names alternatives, one of them matching is enough.
func (a Assertion) matchClaim(key, pattern string) string {
	var seen []string
	for _, n := range claimAlternatives(key) {
		v, ok := a.ClaimString(n)
		if !ok {
			continue
		}
		if MatchPattern(pattern, v) {
			return ""
		}
		seen = append(seen, n+"="+Truncate(v, 80))
	}
	if len(seen) == 0 {
		return fmt.Sprintf("condition %s=%s: the token has no %s claim", key, pattern, strings.Join(claimAlternatives(key), " or "))
	}
	return fmt.Sprintf("condition %s=%s: the token has %s", key, pattern, strings.Join(seen, ", "))
}
