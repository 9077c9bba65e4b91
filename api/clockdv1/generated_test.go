package clockdv1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/clockd/clockd/api/clockdv1" // registers the compiled descriptors
)

// TestGeneratedCodeMatchesProto compiles every .proto file with protoc and
// compares the descriptors with the ones compiled into the generated code,
// so a .proto edit without scripts/proto.sh fails here. It needs protoc,
// which scripts/proto.sh installs.
func TestGeneratedCodeMatchesProto(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc is not installed; scripts/proto.sh installs it")
	}
	sources, err := filepath.Glob("../proto/clockd/v1/*.proto")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .proto files: %v", err)
	}
	out := filepath.Join(t.TempDir(), "set.pb")
	args := []string{"-I", "../proto", "--descriptor_set_out=" + out}
	for _, src := range sources {
		args = append(args, filepath.Join("clockd/v1", filepath.Base(src)))
	}
	if msg, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	for _, fromProto := range set.File {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(fromProto.GetName())
		if err != nil {
			t.Errorf("no generated code for %s; run scripts/proto.sh", fromProto.GetName())
			continue
		}
		fromGo := protodesc.ToFileDescriptorProto(fd)
		if !proto.Equal(stripJSONNames(fromProto), stripJSONNames(fromGo)) {
			t.Errorf("%s: the generated code is out of date; run scripts/proto.sh", fromProto.GetName())
		}
	}
}

// stripJSONNames clears json_name, which protoc fills in for plugins but
// not in --descriptor_set_out.
func stripJSONNames(f *descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
	f = proto.Clone(f).(*descriptorpb.FileDescriptorProto)
	var strip func([]*descriptorpb.DescriptorProto)
	strip = func(ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			for _, fld := range m.Field {
				fld.JsonName = nil
			}
			strip(m.NestedType)
		}
	}
	strip(f.MessageType)
	return f
}
