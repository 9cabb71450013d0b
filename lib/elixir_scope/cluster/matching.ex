defmodule ElixirScope.Cluster.Matching do
  @moduledoc """
  Which send a receive received, across nodes. Each node records only its own side of a
  message — node A the `:send` to a pid of node B, node B the `:receive` — so the two
  are paired here: a GenServer call by its tag (`{:"$gen_call", {from, tag}, request}`)
  and its reply by the same tag (`{tag, reply}`), any other message by its receiver and
  its equality, in order (the earliest unmatched send of that message to that process).
  """

  @typedoc "An event's identity across the cluster."
  @type key :: {node(), pos_integer()}

  @doc """
  The matches among `events` (maps with `:node`, `:id`, `:type` and, for messages,
  `:message`, `:to_pid` or `:pid`; listed in the order to match them in, sends earlier
  first): `%{receive_key => send_key}`.
  """
  @spec match([map()]) :: %{key() => key()}
  def match(events) do
    sends =
      Enum.reduce(events, %{}, fn
        %{type: :send} = e, acc ->
          case send_key(e) do
            nil -> acc
            k -> Map.update(acc, k, :queue.in(id(e), :queue.new()), &:queue.in(id(e), &1))
          end

        _, acc ->
          acc
      end)

    {matches, _} =
      Enum.reduce(events, {%{}, sends}, fn
        %{type: :receive} = e, {matches, sends} = acc ->
          k = receive_key(e)

          case sends do
            %{^k => q} ->
              case :queue.out(q) do
                {{:value, send}, rest} -> {Map.put(matches, id(e), send), Map.put(sends, k, rest)}
                {:empty, _} -> acc
              end

            _ ->
              acc
          end

        _, acc ->
          acc
      end)

    matches
  end

  defp id(%{node: node, id: id}), do: {node, id}

  defp send_key(%{message: m} = e) do
    case tag(m) do
      nil -> if is_pid(e[:to_pid]), do: {:message, e.to_pid, m}
      tag -> tag
    end
  end

  defp send_key(_), do: nil

  defp receive_key(%{message: m} = e), do: tag(m) || {:message, e[:pid], m}
  defp receive_key(_), do: nil

  # A call by its tag; a reply by the tag it answers (a reference, or the
  # [:alias | reference] of OTP 24+).
  defp tag({:"$gen_call", {_from, tag}, _request}), do: {:call, tag}
  defp tag({ref, _reply}) when is_reference(ref), do: {:reply, ref}
  defp tag({[:alias | ref], _reply}) when is_reference(ref), do: {:reply, ref}
  defp tag(_), do: nil
end
