// Reading whether a capture pod can start from the cluster's own words: a node's Ready condition, a DaemonSet pod's
// node before it is bound, and the scheduler's refusal.
import { describe, expect, it } from 'vitest';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { kubeletGone, notReady, podNode, unschedulable, waitsForRoom } from '../../src/targets/k8s/readiness.js';

const node = (ready?: { status: string; reason?: string; message?: string }): V1Node => ({
  metadata: { name: 'worker-2' },
  status: { conditions: [{ type: 'MemoryPressure', status: 'False' }, ...(ready ? [{ type: 'Ready', ...ready }] : [])] },
});

describe('notReady', () => {
  it('says why a node is not Ready as its condition does, in one line', () => {
    expect(notReady(node({ status: 'True', reason: 'KubeletReady' }))).toBeNull();
    expect(notReady(node({ status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' }))).toBe('NotReady (KubeletNotReady: container runtime is down)');
    expect(notReady(node({ status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }))).toBe('NotReady (NodeStatusUnknown: Kubelet stopped posting node status)');
    expect(notReady(node({ status: 'False', reason: 'KubeletNotReady', message: 'PLEG is not healthy:\n  pleg was last seen active 3m0s ago' })))
      .toBe('NotReady (KubeletNotReady: PLEG is not healthy: pleg was last seen active 3m0s ago)');
    expect(notReady(node({ status: 'Unknown' }))).toBe('NotReady (Ready is Unknown)');
    expect(notReady(node())).toBe('NotReady (it reports no Ready condition)');
  });
});

describe('kubeletGone', () => {
  it('is true only while the kubelet stops posting status (Ready=Unknown), not for a node NotReady with its kubelet up', () => {
    expect(kubeletGone(node({ status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }))).toBe(true);
    // the pod network down: the kubelet still starts host-network pods, as the capture pod is
    expect(kubeletGone(node({
      status: 'False', reason: 'KubeletNotReady',
      message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
    }))).toBe(false);
    expect(kubeletGone(node({ status: 'True', reason: 'KubeletReady' }))).toBe(false);
    // (a node just registered, whose kubelet has not posted a condition yet)
    expect(kubeletGone(node())).toBe(false);
  });
});

describe('podNode', () => {
  const affinity = (values: string[]) => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values }] }] } } });
  const pod = (spec: Partial<NonNullable<V1Pod['spec']>>): V1Pod => ({ spec: { containers: [{ name: 'helper' }], ...spec } });

  it('is the node a pod is bound to, or before that the one node its DaemonSet affinity names', () => {
    expect(podNode(pod({ nodeName: 'worker-1', affinity: affinity(['worker-1']) }))).toBe('worker-1');
    expect(podNode(pod({ affinity: affinity(['worker-2']) }))).toBe('worker-2');
    // the DaemonSet's own template names every chosen node: no one node yet
    expect(podNode(pod({ affinity: affinity(['worker-1', 'worker-2']) }))).toBeNull();
    expect(podNode(pod({}))).toBeNull();
  });
});

describe('unschedulable', () => {
  it('is the scheduler\'s reason and message when it refused the pod, else null', () => {
    const msg = '0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn\'t match Pod\'s node affinity/selector.';
    expect(unschedulable({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: msg }] } }))
      .toBe('Unschedulable: 0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn\'t match Pod\'s node affinity/selector');
    expect(unschedulable({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] } })).toBeNull();
    expect(unschedulable({ status: { phase: 'Pending' } })).toBeNull();
  });
});

describe('waitsForRoom', () => {
  it('is true for a refusal for want of room on the pod\'s node alone, which the scheduler retries; false for anything else', () => {
    const pre = ' preemption: 0/6 nodes are available: 1 No preemption victims found for incoming pod, 5 Preemption is not helpful for scheduling.';
    expect(waitsForRoom(`Unschedulable: 0/6 nodes are available: 1 Insufficient memory, 5 node(s) didn't match Pod's node affinity/selector.${pre}`)).toBe(true);
    expect(waitsForRoom('Unschedulable: 0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) didn\'t match Pod\'s node affinity/selector.')).toBe(true);
    expect(waitsForRoom('Unschedulable: 0/1 nodes are available: 1 Too many pods.')).toBe(true);
    expect(waitsForRoom('Unschedulable: 0/2 nodes are available: 1 Insufficient ephemeral-storage, 1 node(s) didn\'t match Pod\'s node affinity/selector.')).toBe(true);
    // the node it is pinned to is gone or renamed: every node fails the affinity
    expect(waitsForRoom(`Unschedulable: 0/6 nodes are available: 6 node(s) didn't match Pod's node affinity/selector.${pre}`)).toBe(false);
    // room and something no pod ending will change
    expect(waitsForRoom('Unschedulable: 0/2 nodes are available: 1 Insufficient memory, 1 node(s) had volume node affinity conflict.')).toBe(false);
    expect(waitsForRoom('Unschedulable: 0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) didn\'t match Pod\'s node affinity/selector.')).toBe(false);
    // a message not read
    expect(waitsForRoom('SchedulerError: binding rejected')).toBe(false);
    expect(waitsForRoom('not schedulable')).toBe(false);
  });
});
