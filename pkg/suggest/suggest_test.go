package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"data-dir", "node-name", "node-ip"}
	for in, want := range map[string]string{"data-dri": "data-dir", "node-nmae": "node-name", "node-i": "node-ip", "token": ""} {
		if got := Closest(in, known); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
