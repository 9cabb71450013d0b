defmodule ElixirScope.Event do
  @moduledoc """
  A recorded event, as the time-travel and analysis functions return it: a map with
  `:id`, `:type`, `:timestamp` and the fields of its type (see the README's event
  table), tagged so that IEx prints it on one line, with its wall-clock time of day
  (UTC, `ElixirScope.WallClock`, from the running store's clock) and what happened — a
  GenServer call or cast by its request, a reply by its answer:

      #Event<42 12:03:07.123456 send #PID<0.120.0> → #PID<0.121.0> call {:push, :a} from #PID<0.120.0>>

  With `limit: :infinity` — `inspect(event, limit: :infinity, pretty: true)`, or
  `IEx.configure(inspect: [limit: :infinity])` — the whole event, every field, with its
  full wall-clock time:

      #Event<42 send at 2026-01-05T12:03:07.123456Z %{from_pid: #PID<0.120.0>, message: ..., timestamp: ..., to_pid: ...}>

  It is still a map: use `event.message`, `event[:cause]`, `Map.get/2`, pattern
  matching (`%{type: :send}`), `Map.from_struct/1` for a plain map.
  """

  @behaviour Access

  defstruct [:id, :type, :timestamp]

  @type t :: %__MODULE__{id: pos_integer(), type: atom(), timestamp: integer()}

  @doc "Tags a stored event map (as `ElixirScope.TraceDB` returns it)."
  @spec wrap(map()) :: t()
  def wrap(%__MODULE__{} = event), do: event
  def wrap(%{} = event), do: Map.put(event, :__struct__, __MODULE__)

  @impl Access
  def fetch(event, key), do: Map.fetch(event, key)

  @impl Access
  def get_and_update(event, key, fun), do: Map.get_and_update(event, key, fun)

  @impl Access
  def pop(event, key), do: Map.pop(event, key)

  @doc false
  # A one-line summary of what happened, for Inspect (and, with a larger `width` for
  # each term shown, for the MCP tools). Every type of the vocabulary
  # (ElixirScope.TraceDB.vocabulary/0) has a clause; other types show their fields.
  def summary(event, width \\ 60)

  def summary(%{type: :send} = e, w),
    do: "#{pid(e[:from_pid])} → #{pid(e[:to_pid] || e[:to])} #{message(e[:message], w)}"

  def summary(%{type: :receive} = e, w) do
    receiver = pid(e[:pid] || e[:to_pid])

    case e[:from_pid] do
      nil -> "#{receiver} #{message(e[:message], w)}"
      from -> "#{pid(from)} → #{receiver} (received) #{message(e[:message], w)}"
    end
  end

  def summary(%{type: :call} = e, w), do: "#{pid(e[:pid])} #{mfa(e)}#{short(e[:args], w)}"

  def summary(%{type: :return} = e, w),
    do: "#{pid(e[:pid])} #{mfa(e)} → #{short(e[:result], w)} in #{duration(e[:duration])}"

  def summary(%{type: :exception} = e, w),
    do:
      "#{pid(e[:pid])} #{mfa(e)} #{e[:class]} #{short(e[:reason], w)} in #{duration(e[:duration])}"

  def summary(%{type: :state} = e, w),
    do: "#{pid(e[:pid])} #{e[:callback]} #{short(e[:cause], w)} → #{short(e[:state], w)}"

  def summary(%{type: :phoenix} = e, w) do
    what =
      [
        e[:kind],
        e[:callback],
        e[:phase],
        e[:method],
        e[:path],
        e[:route] && "(#{e[:route]})",
        e[:view] && inspect(e[:view]),
        e[:topic],
        e[:event] && inspect(e[:event]),
        e[:status]
      ]
      |> Enum.reject(&is_nil/1)
      |> Enum.join(" ")

    "#{pid(e[:pid])} #{what}" <>
      if(e[:duration], do: " in #{duration(e[:duration])}", else: "") <>
      if(is_binary(e[:error]), do: ": " <> String.slice(e[:error], 0, w), else: "")
  end

  def summary(%{type: type} = e, w) when type in [:exit, :crash],
    do: "#{pid(e[:pid])} #{short(e[:reason], w)}"

  def summary(%{type: :send_to_dead} = e, w),
    do:
      "#{pid(e[:from_pid])} → #{pid(e[:to_pid] || e[:to])} (not running) #{short(e[:message], w)}"

  def summary(%{type: :spawn} = e, w),
    do: "#{pid(e[:parent])} spawned #{pid(e[:pid])} #{short(e[:initial_call], w)}"

  def summary(%{type: :alive} = e, w),
    do:
      "#{pid(e[:pid])} #{if e[:name], do: "#{inspect(e[:name])} "}running " <>
        short(e[:initial_call], w)

  def summary(%{type: type} = e, w) when type in [:link, :unlink],
    do: "#{pid(e[:pid])} #{type} #{if e[:to_pid], do: pid(e[:to_pid]), else: short(e[:other], w)}"

  def summary(%{type: type} = e, w) when type in [:register, :unregister],
    do: "#{pid(e[:pid])} #{type} #{short(e[:name], w)}"

  def summary(%{type: :process} = e, w),
    do: "#{pid(e[:pid])} #{short(e[:event], w)}#{if e[:reason], do: " " <> short(e[:reason], w)}"

  def summary(%{type: :system_monitor} = e, w),
    do: "#{pid(e[:pid] || e[:port])} #{e[:kind]} #{short(e[:info], w)}"

  def summary(%{type: :governor} = e, w),
    do: "step #{short(e[:step], w)}: #{short(e[:reason], w)}"

  def summary(%{type: type} = e, w) when type in [:error, :persist_error],
    do: "#{short(e[:reason] || e[:message], w)}#{if e[:path], do: " (#{e[:path]})"}"

  def summary(e, w), do: e |> Map.drop([:__struct__, :id, :type, :timestamp]) |> short(w)

  # A message, with what tells most first: a GenServer call or cast shows its request
  # (the caller and reply tag come after it), a reply its answer.
  defp message({:"$gen_call", {from, _tag}, request}, w) when is_pid(from),
    do: "call #{short(request, w)} from #{inspect(from)}"

  defp message({:"$gen_cast", request}, w), do: "cast #{short(request, w)}"

  defp message({[:alias | ref], reply}, w) when is_reference(ref),
    do: "reply #{short(reply, w)}"

  defp message(message, w), do: short(message, w)

  defp pid(nil), do: "?"
  defp pid(p), do: inspect(p)

  defp mfa(e), do: "#{inspect(e[:module])}.#{e[:function]}/#{e[:arity]}"

  @doc false
  # `term` inspected in at most `width` characters, maps with their keys sorted: the
  # same text on every OTP, whatever order the runtime iterates a map in.
  def short(term, width) do
    text =
      inspect(term,
        limit: max(8, div(width, 6)),
        printable_limit: width,
        custom_options: [sort_maps: true]
      )

    if String.length(text) > width, do: String.slice(text, 0, width - 3) <> "...", else: text
  end

  defp duration(nil), do: "?"
  defp duration(native), do: "#{System.convert_time_unit(native, :native, :microsecond)}µs"

  defimpl Inspect do
    import Inspect.Algebra

    # One line (what happened, with its wall-clock time of day), or, with
    # `limit: :infinity`, the whole event: every field, laid out by the options given
    # (`pretty: true` breaks it over lines).
    def inspect(event, %Inspect.Opts{limit: :infinity} = opts) do
      fields = event |> Map.from_struct() |> Map.drop([:id, :type])
      at = ElixirScope.WallClock.format(event.timestamp)

      concat([
        "#Event<#{event.id} #{event.type}",
        if(at, do: " at #{at}", else: ""),
        " ",
        to_doc(fields, %{
          opts
          | custom_options: Keyword.put(opts.custom_options, :sort_maps, true)
        }),
        ">"
      ])
    end

    def inspect(event, _opts) do
      "#Event<#{event.id} #{time_of_day(event)}#{event.type} #{ElixirScope.Event.summary(event)}>"
    end

    defp time_of_day(%{timestamp: ts}) when is_integer(ts) do
      case ElixirScope.WallClock.wall_time(ts) do
        nil -> ""
        at -> "#{at |> DateTime.to_time() |> Time.to_iso8601()} "
      end
    end

    defp time_of_day(_event), do: ""
  end
end
