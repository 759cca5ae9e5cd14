package errdefs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestKindSurvivesWrapping(t *testing.T) {
	base := errors.New("no such container")
	err := fmt.Errorf("delete abc: %w", NotFound(base))
	if !Is(err, KindNotFound) {
		t.Fatalf("KindOf(%v) = %v, want NotFound", err, KindOf(err))
	}
	if !errors.Is(err, base) {
		t.Fatalf("wrapped error lost its cause")
	}
	if got := HTTPStatus(err); got != http.StatusNotFound {
		t.Fatalf("HTTPStatus = %d", got)
	}
	if KindOf(base) != KindUnknown || HTTPStatus(base) != http.StatusInternalServerError {
		t.Fatalf("plain error classified")
	}
	if InvalidArgument(nil) != nil {
		t.Fatalf("nil must stay nil")
	}
}
