package engine

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		name    string
		start   image.RunConfig
		changes []string
		want    image.RunConfig
		err     string
	}{
		{name: "cmd exec form", changes: []string{`CMD ["sh", "-c", "echo hi"]`},
			want: image.RunConfig{Cmd: []string{"sh", "-c", "echo hi"}}},
		{name: "cmd shell form", changes: []string{"CMD echo hi"},
			want: image.RunConfig{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{name: "entrypoint, lower case", changes: []string{`entrypoint ["/init"]`},
			want: image.RunConfig{Entrypoint: []string{"/init"}}},
		{name: "env pairs replace", start: image.RunConfig{Env: []string{"A=1", "B=2"}},
			changes: []string{`ENV A=x C="two words"`},
			want:    image.RunConfig{Env: []string{"A=x", "B=2", "C=two words"}}},
		{name: "env legacy form", changes: []string{"ENV GREETING hello world"},
			want: image.RunConfig{Env: []string{"GREETING=hello world"}}},
		{name: "labels", changes: []string{`LABEL a=1 "b c"=2`},
			want: image.RunConfig{Labels: map[string]string{"a": "1", "b c": "2"}}},
		{name: "expose", changes: []string{"EXPOSE 80 53/udp 8000-8001"},
			want: image.RunConfig{ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}}},
		{name: "volume json and words", changes: []string{`VOLUME ["/a"]`, "VOLUME /b /c"},
			want: image.RunConfig{Volumes: map[string]struct{}{"/a": {}, "/b": {}, "/c": {}}}},
		{name: "workdir relative", changes: []string{"WORKDIR /srv", "WORKDIR app"},
			want: image.RunConfig{WorkingDir: "/srv/app"}},
		{name: "user stopsignal onbuild", changes: []string{"USER 1000:1000", "STOPSIGNAL SIGINT", "ONBUILD RUN true"},
			want: image.RunConfig{User: "1000:1000", StopSignal: "SIGINT", OnBuild: []string{"RUN true"}}},
		{name: "unknown", changes: []string{"RUN rm -rf /"}, err: "RUN is not a valid change command"},
		{name: "env without value", changes: []string{"ENV A"}, err: "must have a value"},
		{name: "bad port", changes: []string{"EXPOSE http"}, err: "invalid containerPort"},
		{name: "unterminated quote", changes: []string{`LABEL a="b`}, err: "unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.start
			err := ApplyChanges(&got, tt.changes)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errdefs.Is(err, errdefs.KindInvalidArgument) {
					t.Fatalf("err = %v, want an invalid-argument error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
