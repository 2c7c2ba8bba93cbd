package berth_test

import (
	"testing"

	"github.com/berth-dev/berth"
)

func TestUploadID(t *testing.T) {
	for id, want := range map[string]bool{
		"3f1c-AB09": true, "": false, "../x": false, "a b": false,
		string(make([]byte, berth.MaxUploadIDLength+1)): false,
	} {
		if got := berth.ValidUploadID(id); got != want {
			t.Errorf("ValidUploadID(%q) = %v, want %v", id, got, want)
		}
	}
	if e := berth.UploadIDInvalid("../x"); e.Code != berth.CodeBlobUploadInvalid || e.Hint == "" {
		t.Errorf("UploadIDInvalid: %+v", e)
	}
	if e := berth.UploadUnknown("x"); e.Code != berth.CodeBlobUploadUnknown || e.Hint == "" {
		t.Errorf("UploadUnknown: %+v", e)
	}
}
