defmodule ElixirScope.Processes.Live do
  @moduledoc false
  # The live half of ElixirScope.Processes: what Process.info/2 says about processes
  # running now on this node. (A pid of another node has no live part.)

  @info_items [
    :registered_name,
    :status,
    :message_queue_len,
    :memory,
    :reductions,
    :current_function,
    :initial_call,
    :links,
    :monitors,
    :dictionary
  ]

  # The live part of process_info/2, or nil when the process is not running.
  def info(pid) do
    with true <- local?(pid),
         info when is_list(info) <- Process.info(pid, @info_items) do
      info = Map.new(info)
      {dict, info} = Map.pop(info, :dictionary)

      %{
        info
        | registered_name: name_or_nil(info.registered_name),
          initial_call: dict[:"$initial_call"] || info.initial_call
      }
      |> Map.put(:parent, parent(pid, dict))
    else
      _ -> nil
    end
  end

  # Whether a live process runs `module`: its initial call, or its proc_lib one.
  def runs?(pid, module) do
    case Process.info(pid, [:initial_call, :dictionary]) do
      [initial_call: ic, dictionary: dict] ->
        mfa_module(ic) == module or mfa_module(dict[:"$initial_call"]) == module

      nil ->
        false
    end
  end

  # Its $ancestors, as pids, nearest first.
  def ancestors(pid) do
    with true <- local?(pid),
         {:dictionary, dict} <- Process.info(pid, :dictionary) do
      dict |> Keyword.get(:"$ancestors", []) |> Enum.map(&resolve/1) |> Enum.filter(&is_pid/1)
    else
      _ -> []
    end
  end

  # The first of its $ancestors, else the spawning process where the runtime knows it.
  def parent(pid, dict) do
    case dict[:"$ancestors"] do
      [first | _] when is_pid(first) or is_atom(first) ->
        resolve(first)

      _ ->
        # Process.info(pid, :parent) exists from OTP 25 on.
        try do
          case Process.info(pid, :parent) do
            {:parent, parent} when is_pid(parent) -> parent
            _ -> nil
          end
        rescue
          ArgumentError -> nil
        end
    end
  end

  # Running as a supervisor (Supervisor, :supervisor, DynamicSupervisor).
  def supervisor?(pid) do
    case Process.info(pid, :dictionary) do
      {:dictionary, dict} -> supervisor_call?(dict[:"$initial_call"])
      nil -> false
    end
  end

  @doc false
  def supervisor_call?({:supervisor, _, _}), do: true
  def supervisor_call?({DynamicSupervisor, :init, 1}), do: true
  def supervisor_call?(_), do: false

  # message_queue_analysis/1 of ElixirScope.Processes: the recorded traffic of the last
  # window_ms (per pid: sent, inflow, received) with the live queues.
  def queue_analysis(traffic, window_ms, limit) do
    live = queues()
    secs = window_ms / 1000

    traffic =
      traffic
      |> Enum.map(fn %{pid: pid, sent: sent, inflow: inflow, received: received} ->
        queue = get_in(live, [pid, :message_queue_len])
        inflow_rate = inflow / secs
        received_rate = received / secs

        %{
          pid: pid,
          sent: sent,
          inflow: inflow,
          received: received,
          sent_per_sec: sent / secs,
          inflow_per_sec: inflow_rate,
          received_per_sec: received_rate,
          message_queue_len: queue,
          growing:
            inflow > 0 and inflow_rate > received_rate * 1.2 and is_integer(queue) and queue > 0
        }
      end)
      |> Enum.sort_by(&{-&1.inflow, &1.pid})
      |> Enum.take(limit)

    %{window_ms: window_ms, top: live |> top_queues() |> Enum.take(limit), traffic: traffic}
  end

  # Message queues, names and current functions of every live process.
  def queues do
    for pid <- Process.list(),
        info = Process.info(pid, [:message_queue_len, :registered_name, :current_function]),
        info != nil,
        into: %{} do
      {pid, Map.new(info)}
    end
  end

  # The longest non-empty queues of queues/0, longest first.
  def top_queues(queues) do
    queues
    |> Enum.filter(fn {_pid, info} -> info.message_queue_len > 0 end)
    |> Enum.sort_by(fn {pid, info} -> {-info.message_queue_len, pid} end)
    |> Enum.map(fn {pid, info} ->
      %{
        pid: pid,
        name: name_or_nil(info.registered_name),
        message_queue_len: info.message_queue_len,
        current_function: info.current_function
      }
    end)
  end

  def alive?(pid), do: local?(pid) and Process.alive?(pid)
  def local?(pid), do: node(pid) == node()

  defp resolve(pid) when is_pid(pid), do: pid
  defp resolve(name) when is_atom(name), do: Process.whereis(name)
  defp resolve(_), do: nil

  defp mfa_module({m, _f, _a}) when is_atom(m), do: m
  defp mfa_module(_), do: nil

  defp name_or_nil([]), do: nil
  defp name_or_nil(name), do: name
end
