package memory_test

import (
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store { return memory.New() })
}

func TestFastTokens(t *testing.T) {
	storagetest.RunFastTokens(t, func(*testing.T) storagetest.FastStore { return memory.New() })
}

func TestPEP(t *testing.T) {
	storagetest.RunPEP(t, func(*testing.T) storagetest.PEPStore { return memory.New() })
}

func TestMUC(t *testing.T) {
	storagetest.RunMUC(t, func(*testing.T) storagetest.MUCStore { return memory.New() })
}
