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

func TestAppServiceQueue(t *testing.T) {
	storagetest.RunAppServiceQueue(t, func(*testing.T) (storage.AppServiceQueue, storagetest.Reopen) {
		s := memory.New()
		// Nothing survives a restart of this backend: reopening is
		// seeing the same store again.
		return s, func(*testing.T) storage.AppServiceQueue { return s }
	})
}

func TestInvites(t *testing.T) {
	storagetest.RunInvites(t, func(*testing.T) storage.Invites { return memory.New() })
}
