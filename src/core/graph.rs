//! The dependency graph: services as indices, a stable start order, cycles as paths.
//!
//! Names are turned into [`ServiceId`]s once, by the config loader; from then on everything
//! refers to services by index. An edge `a → b` in `deps[a]` means "a starts after b" (a
//! `depends_on` or an `after`). The functions here are pure and never panic: an out-of-range
//! edge is ignored rather than trusted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A service's index. In a loaded [`crate::config::Config`] it is the position in
/// `Config::services`, which is also the start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub usize);

impl ServiceId {
    /// The index into the services vector.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Orders services so that each comes after everything in its `deps`.
///
/// Among services whose dependencies are all placed, the lowest index goes first, so
/// independent services keep their file order and the result is deterministic (Kahn's
/// algorithm with a min-heap). `None` when there is a cycle: [`find_cycles`] says where (the
/// caller may look for them on a smaller graph, as the config loader does on its services
/// before `instances` are expanded).
pub fn start_order(deps: &[Vec<ServiceId>]) -> Option<Vec<ServiceId>> {
    let n = deps.len();
    let dependents = dependents(deps);
    let mut waiting_on: Vec<usize> = vec![0; n];
    for i in dependents.iter().flatten() {
        if let Some(count) = waiting_on.get_mut(i.0) {
            *count += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (waiting_on.iter().enumerate())
        .filter(|&(_, &w)| w == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(ServiceId(i));
        for d in dependents.get(i).into_iter().flatten() {
            let Some(count) = waiting_on.get_mut(d.0) else {
                continue;
            };
            *count = count.saturating_sub(1);
            if *count == 0 {
                ready.push(Reverse(d.0));
            }
        }
    }
    (order.len() == n).then_some(order)
}

/// For each service, the services that list it in their `deps`, in index order, without
/// duplicates. This is the graph walked when a service fails (its dependents fail too) and at
/// shutdown (a service stops only after all of these have stopped).
pub fn dependents(deps: &[Vec<ServiceId>]) -> Vec<Vec<ServiceId>> {
    let mut out: Vec<Vec<ServiceId>> = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for d in ds {
            // Lists fill in index order, so a duplicate edge of `i` finds `i` last: no search
            // (a service with thousands of dependencies would otherwise cost their square).
            if let Some(list) = out.get_mut(d.0)
                && list.last() != Some(&ServiceId(i))
            {
                list.push(ServiceId(i));
            }
        }
    }
    out
}

/// Finds dependency cycles, at most `max` of them, each as a path that starts and ends with the
/// same service (`[a, b, c, a]` for `a -> b -> c -> a`), rotated to start at its lowest index.
///
/// A cycle is reported when a back edge closes it and the service whose edge that is lies on
/// no cycle reported before; so no cycle is reported twice, each service closes at most one,
/// and the work stays within the size of the graph plus `max` paths (a dense graph has a
/// cycle for nearly every edge). The walk is iterative, so a long chain cannot overflow the
/// stack.
pub fn find_cycles(deps: &[Vec<ServiceId>], max: usize) -> Vec<Vec<ServiceId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        /// On the walk's stack, at this depth.
        OnStack(usize),
        Done,
    }
    let n = deps.len();
    let mut mark = vec![Mark::New; n];
    let mut reported = vec![false; n];
    let mut cycles: Vec<Vec<ServiceId>> = Vec::new();
    // Every index below is < n: roots come from 0..n and edges at or past n are skipped.
    let set = |mark: &mut Vec<Mark>, i: usize, m: Mark| {
        if let Some(slot) = mark.get_mut(i) {
            *slot = m;
        }
    };
    for root in 0..n {
        if mark.get(root) != Some(&Mark::New) {
            continue;
        }
        // Each frame is a service and how many of its edges have been followed.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        set(&mut mark, root, Mark::OnStack(0));
        while let Some(frame) = stack.last_mut() {
            let (node, next) = *frame;
            let Some(&ServiceId(to)) = deps.get(node).and_then(|d| d.get(next)) else {
                set(&mut mark, node, Mark::Done);
                stack.pop();
                continue;
            };
            frame.1 += 1;
            match mark.get(to) {
                None | Some(Mark::Done) => {}
                Some(Mark::New) => {
                    set(&mut mark, to, Mark::OnStack(stack.len()));
                    stack.push((to, 0));
                }
                Some(&Mark::OnStack(depth)) => {
                    if cycles.len() >= max || reported.get(node) != Some(&false) {
                        continue;
                    }
                    let path: Vec<usize> = stack.iter().skip(depth).map(|&(s, _)| s).collect();
                    for &s in &path {
                        if let Some(r) = reported.get_mut(s) {
                            *r = true;
                        }
                    }
                    cycles.push(rotate_to_lowest(&path));
                }
            }
        }
    }
    cycles
}

/// Renders a cycle path as `a -> b -> a`, naming services with `name`.
pub fn format_cycle<'a>(cycle: &[ServiceId], name: impl Fn(ServiceId) -> &'a str) -> String {
    cycle
        .iter()
        .map(|&id| name(id))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Turns `[b, c, a]` (a cycle without its closing element) into `[a, b, c, a]`.
fn rotate_to_lowest(path: &[usize]) -> Vec<ServiceId> {
    let lowest = path
        .iter()
        .enumerate()
        .min_by_key(|&(_, &s)| s)
        .map_or(0, |(i, _)| i);
    let (before, from) = path.split_at(lowest.min(path.len()));
    let mut out: Vec<ServiceId> = from.iter().chain(before).map(|&s| ServiceId(s)).collect();
    if let Some(&first) = out.first() {
        out.push(first);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[usize]) -> Vec<ServiceId> {
        v.iter().map(|&i| ServiceId(i)).collect()
    }

    fn graph(edges: &[&[usize]]) -> Vec<Vec<ServiceId>> {
        edges.iter().map(|e| ids(e)).collect()
    }

    #[test]
    fn independent_services_keep_file_order() {
        assert_eq!(start_order(&graph(&[&[], &[], &[]])), Some(ids(&[0, 1, 2])));
    }

    #[test]
    fn dependencies_come_first_and_the_rest_stays_stable() {
        // 0 web -> 1 db; 2 cache; 3 worker -> 2 cache, 1 db
        let g = graph(&[&[1], &[], &[], &[2, 1]]);
        assert_eq!(start_order(&g), Some(ids(&[1, 0, 2, 3])));
    }

    #[test]
    fn a_diamond_is_ordered() {
        // 0 top -> 1, 2; 1 -> 3; 2 -> 3; 3 base
        let g = graph(&[&[1, 2], &[3], &[3], &[]]);
        assert_eq!(start_order(&g), Some(ids(&[3, 1, 2, 0])));
    }

    #[test]
    fn duplicate_and_out_of_range_edges_are_harmless() {
        let g = graph(&[&[1, 1, 9], &[]]);
        assert_eq!(start_order(&g), Some(ids(&[1, 0])));
        assert_eq!(dependents(&g), vec![vec![], ids(&[0])]);
    }

    #[test]
    fn a_cycle_is_reported_as_a_path_from_its_lowest_member() {
        // 0 a -> 1 b -> 2 c -> 0 a, 3 d -> 0 a (not on the cycle)
        let g = graph(&[&[1], &[2], &[0], &[0]]);
        assert_eq!(start_order(&g), None);
        assert_eq!(find_cycles(&g, 10), vec![ids(&[0, 1, 2, 0])]);
        let names = ["a", "b", "c", "d"];
        let cycles = find_cycles(&g, 10);
        assert_eq!(
            format_cycle(&cycles[0], |id| names[id.0]),
            "a -> b -> c -> a"
        );
    }

    #[test]
    fn a_cycle_entered_from_the_middle_still_starts_at_its_lowest_member() {
        // 0 d -> 2; 1 a -> 3; 2 b -> 3; 3 c -> 2
        let g = graph(&[&[2], &[3], &[3], &[2]]);
        assert_eq!(find_cycles(&g, 10), vec![ids(&[2, 3, 2])]);
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        assert_eq!(find_cycles(&graph(&[&[0]]), 10), vec![ids(&[0, 0])]);
    }

    #[test]
    fn two_separate_cycles_are_both_reported() {
        let g = graph(&[&[1], &[0], &[3], &[2]]);
        assert_eq!(find_cycles(&g, 10), vec![ids(&[0, 1, 0]), ids(&[2, 3, 2])]);
    }

    #[test]
    fn a_dense_graph_reports_at_most_one_cycle_per_service_and_max_in_all() {
        let n = 300;
        let all: Vec<Vec<ServiceId>> = (0..n).map(|_| (0..n).map(ServiceId).collect()).collect();
        let cycles = find_cycles(&all, usize::MAX);
        assert!(!cycles.is_empty() && cycles.len() <= n, "{}", cycles.len());
        assert_eq!(find_cycles(&all, 2).len(), 2);
    }

    #[test]
    fn dependents_lists_reverse_edges() {
        let g = graph(&[&[1], &[], &[1, 0]]);
        assert_eq!(dependents(&g), vec![ids(&[2]), ids(&[0, 2]), vec![]]);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let g: Vec<Vec<ServiceId>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![ServiceId(i + 1)]
                } else {
                    vec![]
                }
            })
            .collect();
        let order = start_order(&g).expect("acyclic");
        assert_eq!(order.first(), Some(&ServiceId(n - 1)));
        let mut cyclic = g;
        cyclic[n - 1].push(ServiceId(0));
        assert_eq!(find_cycles(&cyclic, 10)[0].len(), n + 1);
    }
}
