defmodule ElixirScope.Tracing.GenServers do
  @moduledoc false
  # What ElixirScope.Tracing needs to know about a process before it watches it as a
  # GenServer: its callback module (a question asked of the running process, without
  # sending it anything but a system message, and only if proc_lib started it), which of
  # the module's callbacks carry its state changes, and how its states are recorded.

  @callbacks [handle_call: 3, handle_cast: 2, handle_info: 2, handle_continue: 2]

  # The callbacks whose calls and returns carry a watched GenServer's state changes.
  def callbacks, do: @callbacks

  # The callback module of a :gen_server process. Only processes started by proc_lib
  # are asked (a plain process would never answer the system message, and it would sit
  # in its mailbox).
  def callback_module(pid) do
    with {:dictionary, dict} <- Process.info(pid, :dictionary),
         {_, _, _} = initial <- dict[:"$initial_call"],
         {:status, ^pid, {:module, :gen_server}, _} <- :sys.get_status(pid, 1000) do
      callback_module(pid, initial)
    else
      _ -> {:error, :not_a_gen_server}
    end
  catch
    :exit, _ -> {:error, :not_a_gen_server}
  end

  # proc_lib's initial call names the callback module ({Mod, :init, 1}) unless the
  # process put something else there: an Agent its function, a LiveView its view
  # ({View, :mount, 3}: the process runs Phoenix.LiveView.Channel), a Phoenix channel
  # its channel ({Channel, :join, 3}: Phoenix.Channel.Server). Then the gen_server
  # loop's own frame tells: its callback module is in the loop's variables, which the
  # process's backtrace lists (alone on OTP < 27, in a callback cache after).
  defp callback_module(pid, {m, :init, 1}) do
    if callbacks?(m), do: {:ok, m}, else: loop_module(pid)
  end

  defp callback_module(pid, _initial), do: loop_module(pid)

  @register ~r/^y\(\d+\)\s+(?:\{callback_cache,)?('(?:[^'\\]|\\.)+'|[a-z][\w@]*)/m

  defp loop_module(pid) do
    with {:backtrace, text} <- Process.info(pid, :backtrace),
         [_ | _] = names <- Regex.scan(@register, text, capture: :all_but_first),
         module when module != nil <- Enum.find_value(names, &callback_named/1) do
      {:ok, module}
    else
      _ -> {:error, :callback_module_not_found}
    end
  end

  # An atom the runtime printed (quoted or not) that names a loaded callback module;
  # never a new atom.
  defp callback_named([text]) do
    name = text |> String.trim("'") |> String.replace("\\'", "'")
    module = String.to_existing_atom(name)
    if callbacks?(module) and function_exported?(module, :init, 1), do: module
  rescue
    ArgumentError -> nil
  end

  defp callbacks?(module) do
    Code.ensure_loaded?(module) and
      Enum.any?([handle_call: 3, handle_cast: 2, handle_info: 2], fn {f, a} ->
        function_exported?(module, f, a)
      end)
  end

  # How a GenServer's states are recorded (c_src/nif/tracer_internal.h: gs_view), and
  # whether its messages are traced. A LiveView: its assigns, without LiveView's change
  # tracking, and its states and their causes (the messages its forms send) redacted
  # as its params are; its messages, which carry the same params, are not traced.
  @live_view Phoenix.LiveView.Channel
  def view(@live_view), do: {{[:socket, :assigns], :__changed__, true}, :quiet}
  def view(_module), do: {nil, :messages}
end
