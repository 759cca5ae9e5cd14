// Package errdefs classifies berth's errors into a few kinds that map once
// onto CLI exit codes and HTTP status codes.
package errdefs

import (
	"errors"
	"net/http"
)

// Kind is the class of an error, independent of where it happened.
type Kind int

const (
	KindUnknown Kind = iota
	KindInvalidArgument
	KindNotFound
	KindConflict
	KindPermission
	KindUnavailable
	KindNotImplemented
)

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

// InvalidArgument marks err as caused by bad user input (a flag, a config field).
func InvalidArgument(err error) error { return wrap(KindInvalidArgument, err) }

// NotFound marks err as naming something that does not exist.
func NotFound(err error) error { return wrap(KindNotFound, err) }

// Conflict marks err as clashing with existing state (a duplicate id, a running container).
func Conflict(err error) error { return wrap(KindConflict, err) }

// Permission marks err as refused by the kernel or policy.
func Permission(err error) error { return wrap(KindPermission, err) }

// Unavailable marks err as caused by something the host lacks.
func Unavailable(err error) error { return wrap(KindUnavailable, err) }

// NotImplemented marks err as a feature berth does not provide.
func NotImplemented(err error) error { return wrap(KindNotImplemented, err) }

// KindOf returns the outermost kind found in err's chain.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return KindUnknown
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// HTTPStatus maps an error onto the status the Docker Engine API would answer.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case KindInvalidArgument:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindPermission:
		return http.StatusForbidden
	case KindNotImplemented:
		return http.StatusNotImplemented
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WithKind classifies err as k (for errors that crossed a process
// boundary with their kind).
func WithKind(k Kind, err error) error {
	if k == KindUnknown {
		return err
	}
	return wrap(k, err)
}
