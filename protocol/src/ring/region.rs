//! Backing memory for a ring pair, behind the small [`Region`] trait: a real
//! shared-memory region ([`ShmRegion`]) or in-process heap memory
//! ([`HeapRegion`], for tests and loom, where control blocks are ordinary
//! objects). The ring algorithm sees only `&Control` and two `&[ByteCell]`.

use shared_memory::{Shmem, ShmemConf, ShmemError};

use super::layout::{Control, CONTROL_SIZE, DATA_CAPACITY, DATA_OFFSET, REGION_SIZE};
use super::RingOpenError;
use crate::sync::{ByteCell, IS_MODEL};

/// Memory holding a control area and two data areas.
pub(crate) trait Region: Send + Sync {
    /// The control area.
    fn control(&self) -> &Control;
    /// Data area of ring `ring` (0 or 1).
    fn data(&self, ring: usize) -> &[ByteCell];
}

/// A mapped shared-memory region of exactly [`REGION_SIZE`] bytes.
pub(crate) struct ShmRegion {
    shmem: Shmem,
}

// SAFETY: `Shmem` is !Send/!Sync only because it holds the raw mapping
// pointer. The mapping stays valid until `shmem` drops, and all access to it
// goes through atomics (control area) or the ring protocol's ownership of data
// bytes (`ByteCell`), exactly as for the other process that maps it.
unsafe impl Send for ShmRegion {}
// SAFETY: see `Send`: shared references only hand out atomics and ByteCells.
unsafe impl Sync for ShmRegion {}

fn os_text(e: &ShmemError) -> String {
    match e {
        ShmemError::MapCreateFailed(n)
        | ShmemError::MapOpenFailed(n)
        | ShmemError::UnknownOsError(n) => {
            format!("{e} ({})", std::io::Error::from_raw_os_error(*n as i32))
        }
        other => other.to_string(),
    }
}

impl ShmRegion {
    /// Creates a fresh region: map (zero-filled by the OS), then initialise.
    pub(crate) fn create() -> Result<ShmRegion, RingOpenError> {
        if IS_MODEL {
            return Err(RingOpenError::Unsupported);
        }
        let shmem = ShmemConf::new()
            .size(REGION_SIZE)
            .create()
            .map_err(|e| RingOpenError::Create(os_text(&e)))?;
        let region = ShmRegion { shmem };
        region.check_mapping()?;
        // SAFETY: check_mapping() proved the mapping is REGION_SIZE bytes and
        // 128-byte aligned, so a Control fits at offset 0; the region is fresh
        // (its name is unknown to anyone else yet), so nobody else accesses it
        // while we write the initial value.
        unsafe {
            std::ptr::write(region.shmem.as_ptr().cast::<Control>(), Control::new());
        }
        region.control().initialise(DATA_CAPACITY);
        Ok(region)
    }

    /// Opens an existing region and validates size, magic, version and layout.
    pub(crate) fn open(os_id: &str) -> Result<ShmRegion, RingOpenError> {
        if IS_MODEL {
            return Err(RingOpenError::Unsupported);
        }
        let shmem = ShmemConf::new()
            .os_id(os_id)
            .open()
            .map_err(|e| RingOpenError::Open {
                os_id: os_id.to_owned(),
                reason: os_text(&e),
            })?;
        let region = ShmRegion { shmem };
        region.check_mapping()?;
        region.control().validate()?;
        Ok(region)
    }

    /// The OS name of the region.
    pub(crate) fn os_id(&self) -> &str {
        self.shmem.get_os_id()
    }

    fn check_mapping(&self) -> Result<(), RingOpenError> {
        if self.shmem.len() != REGION_SIZE {
            return Err(RingOpenError::WrongSize {
                found: self.shmem.len(),
                expected: REGION_SIZE,
            });
        }
        // mmap returns page-aligned addresses; check rather than assume.
        if self.shmem.as_ptr() as usize & (std::mem::align_of::<Control>() - 1) != 0 {
            return Err(RingOpenError::Open {
                os_id: self.os_id().to_owned(),
                reason: "mapping is not 128-byte aligned".to_owned(),
            });
        }
        Ok(())
    }
}

impl Region for ShmRegion {
    fn control(&self) -> &Control {
        // SAFETY: check_mapping() proved size and alignment; the memory holds a
        // valid Control (written in create(), or by the creating process; every
        // field is an atomic integer, for which any bit pattern is valid), and
        // lives as long as `self.shmem`.
        unsafe { &*self.shmem.as_ptr().cast::<Control>() }
    }

    fn data(&self, ring: usize) -> &[ByteCell] {
        assert!(ring < 2);
        debug_assert_eq!(DATA_OFFSET[0], CONTROL_SIZE);
        // SAFETY: DATA_OFFSET[ring] + DATA_CAPACITY <= REGION_SIZE (checked at
        // compile time in layout.rs) and the mapping is REGION_SIZE bytes;
        // ByteCell is a transparent UnsafeCell<u8>, valid for any byte.
        unsafe {
            std::slice::from_raw_parts(
                self.shmem
                    .as_ptr()
                    .add(DATA_OFFSET[ring])
                    .cast::<ByteCell>(),
                DATA_CAPACITY,
            )
        }
    }
}

/// The same control area and two data areas of `capacity` bytes on the heap.
pub(crate) struct HeapRegion {
    control: Box<Control>,
    data: [Box<[ByteCell]>; 2],
}

impl HeapRegion {
    pub(crate) fn new(capacity: usize) -> HeapRegion {
        let area = || (0..capacity).map(|_| ByteCell::new()).collect::<Box<[_]>>();
        let region = HeapRegion {
            control: Box::new(Control::new()),
            data: [area(), area()],
        };
        region.control.initialise(capacity);
        region
    }
}

impl Region for HeapRegion {
    fn control(&self) -> &Control {
        &self.control
    }

    fn data(&self, ring: usize) -> &[ByteCell] {
        &self.data[ring]
    }
}
