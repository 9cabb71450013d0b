defmodule ElixirScope.Cluster.Clock do
  @moduledoc """
  One time line for a cluster. Monotonic clocks of different nodes are unrelated, so an
  event's place on the cluster's time line is its *wall* time — its timestamp plus its
  node's monotonic→system offset at that moment (each store notes the offsets as they
  change, `ElixirScope.WallClock`) — corrected by its node's skew: how far that node's
  system clock is ahead of the querying node's, estimated from round trips.

  `skew/2` asks a node its system time `n` times and keeps the round trip with the
  shortest duration: the node read its clock somewhere between sending and receiving,
  so the middle of the round trip is off by at most half its duration (the `error`).
  Estimates are kept for `#{div(10_000, 1000)}` s.
  """

  alias ElixirScope.Cluster.Remote

  @ttl_ms 10_000
  @samples 5

  @typedoc "A node's skew: native units its system clock is ahead, with the bound of the error."
  @type estimate :: %{skew: integer(), error: non_neg_integer(), rtt: non_neg_integer()}

  @doc """
  The skew estimate of `node` (cached for #{div(@ttl_ms, 1000)} s; `fresh: true` to
  measure again). The local node's skew is 0. `{:error, reason}` when the node cannot be
  reached within `timeout:` (default 2000 ms).
  """
  @spec skew(node(), keyword()) :: estimate() | {:error, term()}
  def skew(node, opts \\ [])
  def skew(node, _opts) when node == node(), do: %{skew: 0, error: 0, rtt: 0}

  def skew(node, opts) when is_atom(node) do
    key = {__MODULE__, node}
    now = System.monotonic_time(:millisecond)

    case :persistent_term.get(key, nil) do
      {at, estimate} when now - at < @ttl_ms ->
        if opts[:fresh], do: measure(node, key, opts), else: estimate

      _ ->
        measure(node, key, opts)
    end
  end

  def skew(other, _opts),
    do: raise(ArgumentError, "skew/2 expects a node, got: #{inspect(other)}")

  defp measure(node, key, opts) do
    timeout = Keyword.get(opts, :timeout, 2_000)

    samples =
      for _ <- 1..@samples do
        t0 = :erlang.system_time()
        remote = :erpc.call(node, Remote, :system_time, [], timeout)
        t1 = :erlang.system_time()
        {t1 - t0, remote - div(t0 + t1, 2)}
      end

    {rtt, skew} = Enum.min_by(samples, &elem(&1, 0))
    estimate = %{skew: skew, error: div(rtt + 1, 2), rtt: rtt}
    :persistent_term.put(key, {System.monotonic_time(:millisecond), estimate})
    estimate
  catch
    :error, {:erpc, reason} -> {:error, reason}
    :error, {:exception, :undef, [{Remote, _, _, _} | _]} -> {:error, :elixir_scope_not_loaded}
  end

  @doc """
  An event's time on the cluster's time line (native units, the querying node's system
  clock): its wall time less its node's skew, plus any `inject` (native units, for
  testing how ordering copes with a wrong estimate). `nil` for an event without a wall
  time.
  """
  @spec cluster_time(%{wall: integer() | nil}, integer(), integer()) :: integer() | nil
  def cluster_time(%{wall: nil}, _skew, _inject), do: nil
  def cluster_time(%{wall: wall}, skew, inject), do: wall - skew + inject
end
