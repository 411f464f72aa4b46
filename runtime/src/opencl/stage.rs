//! Uploads ahead of time: the next minibatch travels to the device on a second command
//! queue while the current step computes on the first.
//!
//! Each prefetched input gets a [`Staging`]: page-locked host memory (a buffer allocated
//! with `CL_MEM_ALLOC_HOST_PTR` and mapped once, which drivers copy from by DMA without
//! an intermediate copy) and a device buffer of the input's size. [`Staging::upload`]
//! copies the tensor into the host memory and enqueues a non-blocking write on the
//! transfer queue; the step that then feeds the same tensor (same [`Tensor::stamp`])
//! copies the device buffer into the input's own buffer on the compute queue, after the
//! upload's event, instead of writing from the host. Two events order the reuse of a
//! staging area: `uploaded` (the host memory may be rewritten, the device buffer read) and
//! `consumed` (the device buffer may be overwritten).

use super::ocl_error;
use crate::exec::ExecError;
use crate::{Tensor, TensorData};
use ocl::core::{self, CommandQueue, Context, Event, Mem, MemFlags, MemMap};

/// One input's staging area (see the module docs).
pub(super) struct Staging {
    /// The queue the host memory was mapped on (to unmap it on drop).
    queue: CommandQueue,
    host_mem: Mem,
    host: MemMap<u8>,
    bytes: usize,
    /// The device copy of the staged tensor.
    pub(super) device: Mem,
    /// The stamp of the tensor staged (uploaded, or on its way).
    pub(super) stamp: Option<u64>,
    /// The upload of `stamp`'s contents.
    pub(super) uploaded: Option<Event>,
    /// The last copy out of `device`.
    pub(super) consumed: Option<Event>,
}

impl Staging {
    /// A staging area of `bytes` bytes (at least one) for `what`.
    pub(super) fn new(
        context: &Context,
        queue: &CommandQueue,
        bytes: usize,
        what: &str,
    ) -> Result<Staging, ExecError> {
        let bytes = bytes.max(1);
        let alloc = |flags: MemFlags, kind: &str| {
            // SAFETY: no host pointer is given.
            unsafe { core::create_buffer::<_, u8>(context, flags, bytes, None) }
                .map_err(|e| ocl_error(&format!("allocating {kind} for {what}"), &e))
        };
        let host_mem = alloc(
            MemFlags::READ_ONLY | MemFlags::ALLOC_HOST_PTR,
            "page-locked staging memory",
        )?;
        let device = alloc(MemFlags::READ_WRITE, "a staging buffer")?;
        // SAFETY: a blocking map of the whole buffer; the mapping stays valid until it is
        // unmapped in `drop`, and `host_mem` lives as long as `self`.
        let host = unsafe {
            core::enqueue_map_buffer::<u8, _, _, _>(
                queue,
                &host_mem,
                true,
                core::MapFlags::WRITE,
                0,
                bytes,
                None::<Event>,
                None::<&mut Event>,
            )
        }
        .map_err(|e| ocl_error(&format!("mapping the staging memory for {what}"), &e))?;
        Ok(Staging {
            queue: queue.clone(),
            host_mem,
            host,
            bytes,
            device,
            stamp: None,
            uploaded: None,
            consumed: None,
        })
    }

    /// Copies `t` into the host memory and starts its upload on `transfer` (which the
    /// caller flushes). The caller checked `t` against the input's dtype and length, which
    /// this area was made for.
    pub(super) fn upload(
        &mut self,
        transfer: &CommandQueue,
        t: &Tensor,
        what: &str,
    ) -> Result<(), ExecError> {
        let data = t.data();
        let len = data.len() * data.dtype().size_bytes();
        if len == 0 {
            self.stamp = Some(t.stamp());
            return Ok(());
        }
        if len > self.bytes {
            return Err(super::device_error(format!(
                "{what}: {len} bytes do not fit its {}-byte staging area",
                self.bytes
            )));
        }
        // The previous upload read the host memory: it must be done before rewriting it.
        if let Some(e) = self.uploaded.take() {
            core::wait_for_event(&e).map_err(|e| ocl_error(what, &e))?;
        }
        self.stamp = None;
        let src = match data {
            TensorData::F32(v) => v.as_ptr().cast::<u8>(),
            TensorData::F64(v) => v.as_ptr().cast::<u8>(),
            TensorData::I32(v) => v.as_ptr().cast::<u8>(),
        };
        // SAFETY: `src` holds `len` initialised bytes; the mapping holds `self.bytes >= len`
        // writable bytes, no command reads them now (waited above), and the two do not
        // overlap (one is the tensor's heap storage, the other driver memory).
        let host = unsafe {
            std::ptr::copy_nonoverlapping(src, self.host.as_mut_ptr(), len);
            self.host.as_slice(len)
        };
        let mut uploaded = Event::null();
        // SAFETY: a non-blocking write from the mapped memory, which stays valid and
        // unchanged until `uploaded` completes (waited for before the next rewrite, and on
        // drop); it waits for the last copy out of the device buffer.
        unsafe {
            core::enqueue_write_buffer(
                transfer,
                &self.device,
                false,
                0,
                host,
                self.consumed.as_ref(),
                Some(&mut uploaded),
            )
        }
        .map_err(|e| ocl_error(what, &e))?;
        self.uploaded = Some(uploaded);
        self.stamp = Some(t.stamp());
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Nothing may still read the host memory when it is unmapped; failures here leave
        // the release to the driver, which frees the buffer with its context.
        if let Some(e) = self.uploaded.take() {
            let _ = core::wait_for_event(&e);
        }
        if core::enqueue_unmap_mem_object(
            &self.queue,
            &self.host_mem,
            &self.host,
            None::<Event>,
            None::<&mut Event>,
        )
        .is_ok()
        {
            let _ = core::finish(&self.queue);
        }
    }
}
