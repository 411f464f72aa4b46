//! Step order for overlapping communication: the steps that need an `all_reduce`'s result
//! (a distributed training step's updates) move after every step that does not (the rest
//! of the backward pass), so that each sum runs on the executor's communication thread
//! while the remaining gradients are computed.

use xenon_runtime::program::{LibraryStep, Step};

/// Reorders `steps` (and `groups`, one entry per step) so that every step depending on an
/// `all_reduce` result comes after all steps that do not, each part keeping its order. A
/// step depends on another when it reads what that one writes, or writes what that one
/// reads or writes (by buffer: the order is decided before memory planning, when buffers
/// do not share memory), so the new order computes the same values.
pub fn delay_reduced_consumers<G>(steps: &mut Vec<Step>, groups: &mut Vec<G>) {
    if !steps
        .iter()
        .any(|s| matches!(s, Step::Library(LibraryStep::AllReduce { .. })))
    {
        return;
    }
    let n = steps.len();
    debug_assert_eq!(groups.len(), n, "one group per step");
    let mut late = vec![false; n];
    // Buffers written and read by late steps; an `all_reduce` result counts as written.
    let mut written = std::collections::HashSet::new();
    let mut read = std::collections::HashSet::new();
    for (s, step) in steps.iter().enumerate() {
        let (reads, writes) = step.buffers();
        let depends = reads.iter().any(|b| written.contains(b))
            || writes
                .iter()
                .any(|b| written.contains(b) || read.contains(b));
        if depends {
            late[s] = true;
            read.extend(reads);
            written.extend(writes);
        } else if let Step::Library(LibraryStep::AllReduce { out, .. }) = step {
            written.insert(*out);
        }
    }
    let order: Vec<usize> = (0..n)
        .filter(|&s| !late[s])
        .chain((0..n).filter(|&s| late[s]))
        .collect();
    let mut old_steps: Vec<Option<Step>> = std::mem::take(steps).into_iter().map(Some).collect();
    let mut old_groups: Vec<Option<G>> = std::mem::take(groups).into_iter().map(Some).collect();
    for s in order {
        steps.push(old_steps[s].take().expect("each step once"));
        if let Some(g) = old_groups.get_mut(s).and_then(Option::take) {
            groups.push(g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenon_runtime::DType;

    fn copy(src: usize, dst: usize) -> Step {
        Step::Library(LibraryStep::Copy {
            src,
            dst,
            dtype: DType::F32,
            src_offset: 0,
            dst_offset: 0,
            len: 1,
        })
    }

    fn reduce(x: usize, out: usize) -> Step {
        Step::Library(LibraryStep::AllReduce {
            x,
            out,
            dtype: DType::F32,
            len: 1,
        })
    }

    #[test]
    fn consumers_of_sums_move_after_the_rest_in_order() {
        // 0: g1 = f(a); 1: s1 = Σ g1; 2: u1 = h(s1); 3: g2 = f(b); 4: s2 = Σ g2;
        // 5: u2 = h(s2); 6: c = f(u1) (late by reading u1); 7: d = f(a).
        let mut steps = vec![
            copy(0, 1),
            reduce(1, 2),
            copy(2, 3),
            copy(4, 5),
            reduce(5, 6),
            copy(6, 7),
            copy(3, 8),
            copy(0, 9),
        ];
        let mut groups: Vec<usize> = (0..8).collect();
        delay_reduced_consumers(&mut steps, &mut groups);
        assert_eq!(groups, vec![0, 1, 3, 4, 7, 2, 5, 6]);
        assert_eq!(steps[5], copy(2, 3));
    }

    #[test]
    fn a_step_overwriting_what_a_late_step_reads_stays_after_it() {
        // 2 reads the sum (late) and buffer 0; 3 writes buffer 0: it must stay after 2.
        let mut steps = vec![copy(9, 1), reduce(1, 2), copy(2, 3), copy(8, 2)];
        let mut groups: Vec<usize> = (0..4).collect();
        delay_reduced_consumers(&mut steps, &mut groups);
        assert_eq!(groups, vec![0, 1, 2, 3]);
        let mut steps = vec![copy(9, 1), reduce(1, 2), copy(2, 3), copy(8, 9)];
        let mut groups: Vec<usize> = (0..4).collect();
        delay_reduced_consumers(&mut steps, &mut groups);
        assert_eq!(groups, vec![0, 1, 3, 2]);
    }
}
